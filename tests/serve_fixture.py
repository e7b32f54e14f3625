"""A real ``hpsearch serve`` on a free localhost port, as a subprocess of the installed
package, and the real HTTP client talking to it."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, hpsearch_env, pid_alive, wait_for

from hpsearch.client import Client
from hpsearch.journal import RunState, replay

WORKER = REPO / "sims" / "served" / "worker.py"
GENERATOR = REPO / "sims" / "served" / "generator.py"


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@dataclass
class Service:
    """One service process; ``url`` is the first line it printed."""

    args: list[str]
    cwd: Path
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    err: Path = field(default_factory=Path)

    def start(self, timeout: float = 30) -> Service:
        self.err = self.cwd / f"serve-{time.monotonic_ns()}.err"
        with open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hpsearch", "serve", "--port=0", *self.args],
                cwd=self.cwd, env=hpsearch_env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().strip() if ready else ""
        assert line.startswith("http://"), f"no URL printed: {line!r}; {self.stderr()}"
        self.url = line
        return self

    def stderr(self) -> str:
        return self.err.read_text() if self.err.exists() else ""

    def client(self, **kwargs: Any) -> Client:
        return Client(self.url, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        wait_for(lambda: not pid_alive(self.proc.pid), 10, "the killed service to go")


@pytest.fixture
def services():
    """Services a test started; killed at teardown if still running."""
    started: list[Service] = []
    yield started
    for service in started:
        if service.proc is not None and service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait()


def worker(url: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKER), url, *args], cwd=cwd,
                            env=hpsearch_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal(out_dir: Path) -> list[dict[str, Any]]:
    with open(out_dir / "journal.jsonl") as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def ended(out_dir: Path) -> list[RunState]:
    """The runs the journal knows as ended, read as every tool reads it (a finished search's
    journal is compacted to one event per run, so raw ``end`` events may be gone)."""
    runs = replay(out_dir / "journal.jsonl").runs.values()
    return [r for r in runs if r.status in ("finished", "failed", "cancelled", "pruned")]
