"""Regenerate the on-disk compatibility data in this folder with the installed hpsearch.

Run from the repository root with the project's venv (hpsearch installed from the wheel)::

    .venv/bin/python -P tests/data/ondisk/make.py

It writes two search directories, each in a fixed scratch root (:data:`ROOT`, so that the
absolute paths the search records are the same on every machine and name no user), and
copies them here:

* ``grid/``: ``grid/sim`` (a grid module of 12 configurations and a stdlib sim that logs
  its starts to ``starts.jsonl``) and ``grid/out``, a search of it killed half way with
  ``kill -9``: the six runs with ``x < 3`` finished and were recorded; then two runs were
  running (the sim holds ``x >= 3`` while ``sim/HOLD`` exists) when the driver was killed;
  of those, ``(x=3, y=0)`` was killed with its job wrapper (it started and never ended, as
  after a reboot) and ``(x=3, y=1)`` ended after the driver died (its ``exit_code`` is there,
  the journal does not know); the other four never started.
* ``tpe/``: ``tpe/sim/search.yaml`` and ``tpe/out``, a finished TPE search of
  ``sims/curves/train.py`` under ASHA (some runs pruned, every run with its curve).

What the code does not need and names this machine's state is left out: the lock of the
killed driver (``.hpsearch.lock``: the next driver on another host would wait for it to go
stale), the sim's ``__pycache__`` and ``HOLD``. Nothing else is edited: journals and run
files are as the driver and the job wrapper wrote them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
#: where the searches run (fixed: its absolute path is recorded in search.json and run.json)
ROOT = Path("/tmp/hpsearch-ondisk")
#: the commands, run in ROOT/<name> (the test resumes the grid search with the same one)
GRID_COMMAND = ["--grid_module=hpconf", "--run_cwd=sim", "--out_dir=out", "--visible_gpus=-1",
                "--num_jobs=2", "--deterministic_search"]
TPE_COMMAND = ["--search_file=sim/search.yaml", "--run_cwd=sim", "--out_dir=out",
               "--visible_gpus=-1", "--num_jobs=3"]


def hpsearch(args: list[str], cwd: Path, log: str) -> subprocess.Popen[bytes]:
    """Start ``python -m hpsearch ARGS`` in ``cwd`` (output to ``cwd/<log>``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHASHSEED")}
    with open(cwd / log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "hpsearch", *args], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            raise SystemExit(f"make.py: timed out waiting for {what}")
        time.sleep(0.05)


def lines(path: Path) -> list[dict]:
    """The complete JSON lines of ``path`` (none if it does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines(keepends=True)
            if ln.endswith("\n")]


def fresh(name: str) -> Path:
    """An empty ``ROOT/<name>`` with ``<name>/sim`` copied from this folder."""
    work = ROOT / name
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(HERE / name / "sim", work / "sim",
                    ignore=shutil.ignore_patterns("starts.jsonl", "__pycache__"))
    return work


def keep(work: Path, name: str) -> None:
    """Copy ``work/out`` (and the sim's start log) here as ``<name>/``, without the lock."""
    for leftover in (work / "out").glob(".hpsearch.*"):
        leftover.unlink()
    target = HERE / name / "out"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(work / "out", target)
    if (work / "sim" / "starts.jsonl").exists():
        shutil.copyfile(work / "sim" / "starts.jsonl", HERE / name / "sim" / "starts.jsonl")


def make_grid() -> None:
    """A grid search killed with ``kill -9`` half way (see the module's docstring)."""
    work = fresh("grid")
    hold, starts, journal = work / "sim" / "HOLD", work / "sim" / "starts.jsonl", \
        work / "out" / "journal.jsonl"
    hold.touch()
    driver = hpsearch(GRID_COMMAND, work, "driver.log")

    def finished() -> int:
        return sum(1 for e in lines(journal) if e.get("ev") == "end"
                   and e.get("status") == "finished")

    def held() -> list[dict]:
        return [s for s in lines(starts) if s["x"] >= 3]

    wait_for(lambda: finished() == 6 and len(held()) == 2, "6 runs finished and 2 held")
    time.sleep(1)  # let the driver write what it does between polls (as a real kill finds it)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first, second = held()
    assert (first["x"], first["y"], second["x"], second["y"]) == (3, 0, 3, 1), held()
    os.killpg(os.getpgid(first["pid"]), signal.SIGKILL)  # the sim and its job wrapper
    hold.unlink()
    wait_for(lambda: any((d / "exit_code").exists() and "--x=3" in (d / "run.json").read_text()
                         and "--y=1" in (d / "run.json").read_text()
                         for d in (work / "out" / "runs").iterdir()), "(3, 1) to end")
    keep(work, "grid")


def make_tpe() -> None:
    """A finished TPE search with ASHA-pruned runs."""
    work = fresh("tpe")
    shutil.copyfile(REPO / "sims" / "curves" / "train.py", work / "sim" / "train.py")
    driver = hpsearch(TPE_COMMAND, work, "driver.log")
    if driver.wait(timeout=600) != 0:
        raise SystemExit(f"make.py: the TPE search failed, see {work / 'driver.log'}")
    pruned = sum(1 for e in lines(work / "out" / "journal.jsonl") if e.get("ev") == "prune"
                 or e.get("status") == "pruned")
    if not pruned:
        raise SystemExit("make.py: the TPE search pruned no run; change its seed")
    keep(work, "tpe")


if __name__ == "__main__":
    make_grid()
    make_tpe()
    print(f"written under {HERE}; record `git rev-parse HEAD` in README.md")
