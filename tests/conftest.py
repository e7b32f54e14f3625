"""Shared helpers for the core tests: run ``hpsearch`` as a real subprocess, write tiny sims.

Nothing here mocks hpsearch: a search is a real ``python -m hpsearch`` process running a real
stdlib sim, and the tests read the real files it leaves behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

#: A generic sim: takes any ``--k=v`` / ``--k`` flags, logs its start and end to LOG (a
#: JSON-lines file outside the search directory), and writes ``perf.txt``. Config keys
#: steer it: ``mode`` (ok | exit | nosummary | unfinished | truncated | flaky), ``sleep``
#: (seconds), ``hold`` (1: wait while the file HOLD exists, at most 30 s), ``x`` (the metric).
SIM = r'''
import json, os, sys, time
LOG = {log!r}
HOLD = {hold!r}
args = sys.argv[1:]
cfg = {{}}
for a in args:
    k, eq, v = a[2:].partition("=")
    cfg[k] = v if eq else True
out = cfg.pop("out_dir")
key = json.dumps(sorted(cfg.items()))
def log(ev, **kw):
    with open(LOG, "a") as f:
        f.write(json.dumps({{"ev": ev, "key": key, "pid": os.getpid(), "t": time.time(),
                            **kw}}) + "\n")
def earlier_starts():
    try:
        with open(LOG) as f:
            return sum(1 for ln in f if json.loads(ln)["key"] == key
                       and json.loads(ln)["ev"] == "start")
    except FileNotFoundError:
        return 0
first_attempt = earlier_starts() == 0
log("start")
time.sleep(float(cfg.get("sleep", 0)))
if cfg.get("hold"):
    give_up = time.time() + 30
    while os.path.exists(HOLD) and time.time() < give_up:
        time.sleep(0.05)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "argv.json"), "w") as f:
    json.dump(args, f)
mode = cfg.get("mode", "ok")
if mode == "exit" or (mode == "flaky" and first_attempt):
    log("end", code=3)
    sys.exit(3)
x = float(cfg.get("x", 0))
lines = {{"ok": f"acc {{x!r}}\nloss {{-x!r}}\nfinished 1\n", "nosummary": None,
         "unfinished": f"acc {{x!r}}\nloss {{-x!r}}\nfinished 0\n",
         "truncated": "acc 0.", "flaky": f"acc {{x!r}}\nloss {{-x!r}}\nfinished 1\n"}}[mode]
if lines is not None:
    with open(os.path.join(out, "perf.txt"), "w") as f:
        f.write(lines)
print("sim done", cfg)
log("end", code=0)
'''

GRID_MODULE = '''
grid = {grid!r}
conditions = {conditions!r}
_SCRIPT_NAME = "sim.py"
_SUMMARY_FILENAME = "perf.txt"
_SUMMARY_KEYWORDS = {keywords!r}
_OUT_ARG = "out_dir"
_SUMMARY_PARSER_HANDLE = None
_PERFORMANCE_KEY = {perf_key!r}
_PERFORMANCE_SORT_ASC = {ascending!r}
_PERFORMANCE_EVAL_HANDLE = None
_ARGPARSE_HANDLE = None
'''


@dataclass
class Search:
    """A sim folder ``<root>/proj`` with ``sim.py`` and ``hpconf.py``; runs use cwd ``root``."""

    root: Path
    sim_dir: Path
    log: Path
    hold: Path
    out_dir: Path

    def args(self, *extra: str, out_dir: Path | None = None) -> list[str]:
        """Flags of a local search of this sim (module found via --run_cwd)."""
        return ["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={out_dir or self.out_dir}",
                "--visible_gpus=-1", *extra]

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        with open(self.log) as f:
            return [json.loads(ln) for ln in f if ln.endswith("\n")]

    def starts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ev in self.events():
            if ev["ev"] == "start":
                counts[ev["key"]] = counts.get(ev["key"], 0) + 1
        return counts

    def results(self) -> list[dict[str, str]]:
        import csv

        with open(self.out_dir / "search_results.csv", newline="") as f:
            return list(csv.DictReader(f, delimiter=";"))


def write_search(root: Path, grid: dict[str, list[Any]], conditions: list[Any] | None = None,
                 keywords: list[str] | None = None, perf_key: str | None = "acc",
                 ascending: bool = False, module_text: str | None = None) -> Search:
    """Write the generic sim and a grid module for ``grid`` under ``root/proj``."""
    sim_dir = root / "proj"
    sim_dir.mkdir(parents=True, exist_ok=True)
    log = root / "sim_log.jsonl"
    hold = root / "HOLD"
    (sim_dir / "sim.py").write_text(SIM.format(log=str(log), hold=str(hold)))
    text = module_text if module_text is not None else GRID_MODULE.format(
        grid=grid, conditions=conditions or [], keywords=keywords or ["acc", "loss", "finished"],
        perf_key=perf_key, ascending=ascending)
    (sim_dir / "hpconf.py").write_text(textwrap.dedent(text))
    return Search(root, sim_dir, log, hold, root / "out")


def hpsearch_env() -> dict[str, str]:
    """The environment of a user's shell: hpsearch comes from the installed package."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHASHSEED", None)
    return env


def hpsearch_cmd(args: list[str], console: bool = False) -> list[str]:
    return (["hpsearch"] if console else [sys.executable, "-m", "hpsearch"]) + list(args)


def run_hpsearch(args: list[str], cwd: Path, timeout: float = 60,
                 console: bool = False) -> tuple[int, str, str]:
    """Run ``python -m hpsearch ARGS`` (or the console script) to its end."""
    proc = subprocess.run(hpsearch_cmd(args, console), cwd=cwd, env=hpsearch_env(),
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


def start_hpsearch(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``python -m hpsearch ARGS`` in the background (output to pipes by default)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(hpsearch_cmd(args), cwd=cwd, env=hpsearch_env(), text=True,
                            stdin=subprocess.DEVNULL, **kwargs)


def wait_for(condition: Callable[[], bool], timeout: float = 20, what: str = "",
             poll: float = 0.02) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(poll)


def children_running(parent: int, word: bytes) -> list[int]:
    """Pids of ``parent``'s children whose command line holds ``word``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in status and word in cmdline:
            found.append(int(entry.name))
    return found


#: run a run-contract test twice: runs as processes of their own, and forked from a zygote
#: that preloaded the sim (``--preload``, :mod:`hpsearch.runs.preload`)
PRELOADING = pytest.mark.parametrize("preload", [False, True], ids=["process", "preloaded"])


def preload_flags(preload: bool) -> list[str]:
    return ["--preload"] if preload else []


def preloaded_runs(out_dir: Path) -> list[bool]:
    """For each run directory of the search, whether its ``run.json`` says it was preloaded."""
    return [bool(json.loads(p.read_text()).get("preloaded"))
            for p in sorted(out_dir.glob("runs/*/run.json"))]


def check_preloaded(out_dir: Path, preload: bool, every: bool = True) -> None:
    """With ``preload``, every run (or, not ``every``: some run -- a driver restarted beside
    adopted runs starts runs on their own while its zygote imports) was preloaded; without,
    none."""
    flags = preloaded_runs(out_dir)
    assert flags, "no run directory"
    if not preload:
        assert not any(flags), flags
    else:
        assert all(flags) if every else any(flags), flags


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Background drivers a test started; killed at teardown if still alive."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def count_ev(search: Search, ev: str) -> int:
    """How many ``ev`` ("start"/"end") lines the sims of ``search`` logged."""
    return sum(1 for e in search.events() if e["ev"] == ev)


class CountedTools:
    """A PATH directory whose ``tools`` (a scheduler's commands) append their argv to a log
    file and ``exec`` the real tool, so the real scheduler does all the work and a test counts
    the calls (``env()`` puts the directory first on the driver's PATH)."""

    def __init__(self, root: Path, tools: tuple[str, ...]) -> None:
        self.bin = root / "counting_bin"
        self.bin.mkdir()
        self.log = root / "scheduler_calls.log"
        for tool in tools:
            real = shutil.which(tool)
            assert real, f"{tool} not on PATH"
            script = self.bin / tool
            script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{self.log}"\n'
                              f'exec "{real}" "$@"\n')
            script.chmod(0o755)

    def env(self) -> dict[str, str]:
        env = hpsearch_env()
        env["PATH"] = f"{self.bin}{os.pathsep}{env['PATH']}"
        return env

    def calls(self, tool: str) -> list[str]:
        if not self.log.exists():
            return []
        return [ln for ln in self.log.read_text().splitlines() if ln.startswith(tool + " ")]
