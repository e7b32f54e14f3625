"""Read a W&B offline run (``run-<id>.wandb``) back, record by record, with wandb's own schema.

wandb 0.31 ships no Python reader of its transaction log (``wandb.sdk.internal.datastore``
is gone; ``wandb sync --dry-run`` only lists files), so this walks its framing -- a
LevelDB-style log: a ``:W&B`` header, 32 KiB blocks, records of a 7-byte header (CRC,
length, type: full, first, middle, last) -- and decodes every record with wandb's
protocol buffer ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
FILE_HEADER = 7  # ":W&B", a 2-byte magic, a version byte
RECORD_HEADER = 7  # CRC32 (4 bytes), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What one ``.wandb`` file says about its run."""

    run: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def records(path: Path) -> Iterator[Any]:
    """Every ``Record`` of the file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pending = FILE_HEADER, b""
    while pos + RECORD_HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < RECORD_HEADER:  # a block's tail too short for a header is padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + RECORD_HEADER])
        if kind == 0:
            break
        pending += data[pos + RECORD_HEADER:pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_run(path: Path) -> OfflineRun:
    """The run record, its config, history by step, final summary and exit code."""
    run = OfflineRun()
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run = record.run
            run.config.update({_key(item): json.loads(item.value_json)
                               for item in record.run.config.update})
        elif kind == "config":
            run.config.update({_key(item): json.loads(item.value_json)
                               for item in record.config.update})
        elif kind == "history":
            values = {_key(item): json.loads(item.value_json) for item in record.history.item}
            run.history.append((record.history.step.num, values))
        elif kind == "summary":
            run.summary.update({_key(item): json.loads(item.value_json)
                                for item in record.summary.update})
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def offline_runs(wandb_dir: Path) -> dict[str, OfflineRun]:
    """``{run id: run}`` of every offline run directory under ``wandb_dir`` (a directory
    per id; an id written twice fails)."""
    found: dict[str, OfflineRun] = {}
    for directory in sorted(wandb_dir.glob("offline-run-*")):
        (log,) = directory.glob("run-*.wandb")
        run = read_run(log)
        assert run.run.run_id not in found, f"two offline copies of {run.run.run_id}"
        found[run.run.run_id] = run
    return found
