"""The W&B sink: each ended run as a Weights & Biases run, offline unless the user says so.

Compute nodes rarely reach the internet, so runs are written offline under
``<search dir>/wandb/offline-run-*`` (``wandb sync`` uploads them later) unless the user's
environment sets ``WANDB_MODE`` (``online``, ``disabled``, ...). The project is
``WANDB_PROJECT`` or the search's name, the group the search's name, the run's name its id.

The W&B run id is derived from the search's name and the run id, and runs are opened with
``resume="allow"``: logging a run again (after a crash between writing and noting it) goes to
the same W&B run; offline, the new copy replaces the earlier one's directory, so
``wandb sync`` sends one run per id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.tracking.record import RunRecord, SearchInfo, SinkError

#: Statuses whose run ended as it should (exit code 0 in W&B: "finished"); any other
#: status is an exit code of 1 ("failed"), the exact word is the run's tag.
ENDED_WELL = frozenset({"finished", "pruned"})


class WandbSink:
    """Writes each ended run as a W&B run under ``<out_dir>/wandb/``."""

    name = "wandb"

    def __init__(self, out_dir: Path) -> None:
        _require_wandb()
        self.out_dir = Path(out_dir)
        self.mode = os.environ.get("WANDB_MODE") or "offline"
        self._search: SearchInfo | None = None

    def open(self, search: SearchInfo) -> None:
        """Remember the search: its name is the group (and the project by default)."""
        self._search = search

    def log(self, record: RunRecord) -> None:
        """One W&B run: config, history by step, final metrics as its summary, the status
        as its tag and exit code, the reason as its notes."""
        import wandb

        assert self._search is not None, "open() comes before log()"
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            run = wandb.init(**self._init_args(record))
            try:
                for step, values in record.curve:
                    run.log(dict(values), step=step, commit=True)
                run.summary.update({**record.metrics, **_summary_extras(record)})
            finally:
                run.finish(exit_code=0 if record.status in ENDED_WELL else 1)
        # wandb raises its own errors, OSError, ValueError, ...: each costs this record
        # only, said in one line; the record is offered again later
        except Exception as exc:
            raise SinkError(f"wandb: cannot log {record.run_id}: {_one_line(exc)}") from exc
        if self.mode == "offline":
            _drop_older_copies(Path(run.dir).parent)

    def close(self) -> None:
        """Stop the W&B service process this sink started."""
        import wandb

        wandb.teardown()

    def _init_args(self, record: RunRecord) -> dict[str, Any]:
        """``wandb.init``'s arguments for one run."""
        import wandb

        search = self._search
        assert search is not None
        return {
            "dir": str(self.out_dir),
            "mode": self.mode,
            "project": os.environ.get("WANDB_PROJECT") or search.name,
            "group": search.name,
            "name": record.run_id,
            "id": run_id(search.name, record.run_id),
            "resume": "allow",
            "config": dict(record.config),
            "tags": [record.status],
            "notes": record.reason or None,
            # our stdout and stderr stay ours: no banner, no console capture, no system
            # metrics or code snapshot of the driver's process
            "settings": wandb.Settings(
                silent=True, quiet=True, show_info=False, show_warnings=False,
                console="off", x_disable_stats=True, x_disable_meta=True,
                x_save_requirements=False, save_code=False, disable_git=True,
                disable_job_creation=True),
        }


def run_id(search: str, run: str) -> str:
    """The W&B run id of ``run`` in ``search``: the same for every call (so logging again
    resumes the run), within W&B's id alphabet and length whatever the names hold."""
    return hashlib.sha256(f"{search}\0{run}".encode()).hexdigest()[:32]


def _summary_extras(record: RunRecord) -> dict[str, str]:
    """The status, reason and tags (trial, backend, job id, host, GPU-hours ...) under
    ``hpsearch/`` in the run's summary."""
    extras = {"hpsearch/status": record.status}
    if record.reason:
        extras["hpsearch/reason"] = record.reason
    extras.update({f"hpsearch/{key}": value for key, value in record.tags.items()})
    return extras


def _drop_older_copies(run_dir: Path) -> None:
    """Remove the offline directories of the same W&B run other than ``run_dir``
    (``offline-run-<time>-<id>``): the new one holds the whole record."""
    run = run_dir.name.rsplit("-", 1)[-1]
    for older in run_dir.parent.glob(f"offline-run-*-{run}"):
        if older != run_dir:
            shutil.rmtree(older, ignore_errors=True)


def _one_line(exc: BaseException) -> str:
    """An exception's first line (its type when it says nothing)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _require_wandb() -> None:
    """A missing extra: one line that names the install command."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise UsageError(
            "--log_to wandb needs the wandb package: pip install 'hpsearch[wandb]'") from None
