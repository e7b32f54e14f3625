"""A stand-in simulation that "uses" memory on a fake GPU (tests only; stdlib only).

There is no GPU on the test machine, so end-to-end tests of GPU admission run this
script instead of a CUDA program, next to ``tests/fakes/nvidia-smi``. Both share a
state directory (env ``FAKE_GPU_STATE``); the GPUs are described by env ``FAKE_GPUS``:
``"2x16384"`` (two GPUs of 16384 MiB) or ``"16384,8192"``.

Usage::

    CUDA_VISIBLE_DEVICES=1 python fake_gpu_sim.py --mib 4000 --delay 0.2 --seconds 1

After ``--delay`` seconds the sim registers ``--mib`` MiB on each GPU named by
``CUDA_VISIBLE_DEVICES`` (a run of several GPUs, e.g. ``0,1``, takes it on each, as a data
parallel run does) by writing ``<state>/<pid>.json`` = ``{"gpus": [1], "mib": 4000}``,
holds it for ``--seconds``, removes the file, writes ``performance_overview.txt``
(``gpu_mib 4000``, ``finished 1``) into ``--out_dir`` when given, and exits 0. If the GPU's live
registrations plus ``--mib`` exceed its total it prints a PyTorch-like
``CUDA out of memory`` line to stderr and exits 1, as a real run would. With env
``FAKE_GPU_LOG`` set, each allocation (and refusal) is appended there (see
:func:`log_event`). Unknown arguments (grid values from the driver) are accepted
and ignored.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from pathlib import Path


def gpu_totals(spec: str | None = None) -> list[int]:
    """Total MiB of each fake GPU from ``FAKE_GPUS`` (``"2x16384"`` or ``"16384,8192"``)."""
    spec = (os.environ.get("FAKE_GPUS", "") if spec is None else spec).strip()
    if not spec or spec == "0":
        return []
    if "x" in spec:
        count, mib = spec.split("x", 1)
        return [int(mib)] * int(count)
    return [int(part) for part in spec.split(",")]


def state_dir() -> Path:
    return Path(os.environ["FAKE_GPU_STATE"])


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def live_registrations(state: Path) -> dict[int, dict]:
    """``{pid: {"gpus": [i, ...], "mib": m}}`` for every registration whose process is
    alive (``m`` MiB on each of its GPUs)."""
    found = {}
    for path in state.glob("*.json"):
        try:
            pid, record = int(path.stem), json.loads(path.read_text())
        except (ValueError, OSError):
            continue  # a file being replaced, or not ours
        if pid_alive(pid):
            found[pid] = {"gpus": [int(g) for g in record["gpus"]], "mib": int(record["mib"])}
    return found


def log_event(record: dict[str, object]) -> None:
    """Append ``record`` (plus ``t``, wall clock) as one JSON line to env ``FAKE_GPU_LOG``.

    Unset: nothing is written. Tests read the log to check every moment the fakes saw::

        {"event": "alloc", "t": 1732350000.12, "pid": 4242, "gpu": 1, "mib": 4000, "used": 8000, "total": 16384}
        {"event": "oom", "t": ..., "pid": 4243, "gpu": 1, "mib": 4000, "used": 16000, "total": 16384}
        {"event": "sample", "t": ..., "gpus": [{"index": 0, "used": 0, "total": 16384, "util": 0}]}
        {"event": "start", "t": ..., "pid": 4242, "gpu": 1, "gpus": [1], "trial": "3"}
        (and "end"; ``trial`` is the run's HPSEARCH_TRIAL)
    """  # noqa: E501
    path = os.environ.get("FAKE_GPU_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({**record, "t": time.time()}) + "\n")


def register(gpus: list[int], mib: int) -> str | None:
    """Claim ``mib`` MiB on each of ``gpus`` for this process; the OOM message if it does not
    fit on one of them."""
    state, totals = state_dir(), gpu_totals()
    for gpu in gpus:
        if not 0 <= gpu < len(totals):
            return f"RuntimeError: CUDA error: invalid device ordinal (GPU {gpu})"
    with open(state / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        live = live_registrations(state).values()
        events = []
        for gpu in gpus:
            used = sum(r["mib"] for r in live if gpu in r["gpus"])
            event = {"pid": os.getpid(), "gpu": gpu, "mib": mib, "used": used + mib,
                     "total": totals[gpu]}
            if used + mib > totals[gpu]:
                log_event({"event": "oom", **event})
                return (
                    f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {mib} "
                    f"MiB. GPU {gpu} has a total capacity of {totals[gpu]} MiB of which "
                    f"{totals[gpu] - used} MiB is free."
                )
            events.append(event)
        tmp = state / f".{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"gpus": gpus, "mib": mib}))
        tmp.replace(state / f"{os.getpid()}.json")
        for event in events:
            log_event({"event": "alloc", **event})
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1000, help="GPU memory to use")
    parser.add_argument("--delay", type=float, default=0.0, help="start-up before allocating")
    parser.add_argument("--seconds", type=float, default=0.5, help="how long to hold it")
    parser.add_argument("--out_dir", help="write performance_overview.txt here on success")
    args, _unknown = parser.parse_known_args(argv)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if not visible.strip():
        print("RuntimeError: No CUDA GPUs are available", file=sys.stderr)
        return 1
    gpus = [int(v) for v in visible.split(",")]
    gpu = gpus[0]
    log_event({"event": "start", "pid": os.getpid(), "gpu": gpu, "gpus": gpus,
               "trial": os.environ.get("HPSEARCH_TRIAL")})
    try:
        time.sleep(args.delay)
        error = register(gpus, args.mib)
        if error:
            print(error, file=sys.stderr)
            return 1
        try:
            time.sleep(args.seconds)
        finally:
            (state_dir() / f"{os.getpid()}.json").unlink(missing_ok=True)
    finally:
        log_event({"event": "end", "pid": os.getpid(), "gpu": gpu, "gpus": gpus})
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
            f.write(f"gpu_mib {args.mib}\nfinished 1\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
