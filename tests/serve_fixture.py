"""A real ``hpsearch serve`` on a free localhost port, as a subprocess of the installed
package, and the real HTTP client talking to it (with the token the service printed)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, hpsearch_env, pid_alive, wait_for

from hpsearch.client import Client
from hpsearch.engine.journal import RunState, replay

WORKER = REPO / "sims" / "served" / "worker.py"
GENERATOR = REPO / "sims" / "served" / "generator.py"


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def first_output(proc: subprocess.Popen[bytes], timeout: float) -> list[str]:
    """The lines of what ``proc`` printed first (one write: the URL and the token line come
    together, or the URL alone), waiting at most ``timeout`` for it."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    give_up = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, give_up - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


@dataclass
class Service:
    """One service process; ``url`` is the first line it printed, ``token`` the second
    (``token: <token>``, printed with it; None with ``--no_token``)."""

    args: list[str]
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    token: str | None = None
    err: Path = field(default_factory=Path)

    def start(self, timeout: float = 30) -> Service:
        self.err = self.cwd / f"serve-{time.monotonic_ns()}.err"
        with open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hpsearch", "serve", "--port=0", *self.args],
                cwd=self.cwd, env=hpsearch_env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=err)
        lines = first_output(self.proc, timeout)
        assert lines and lines[0].startswith("http://"), f"no URL printed: {lines}; " \
            f"{self.stderr()}"
        self.url = lines[0]
        self.token = next((line.removeprefix("token: ") for line in lines[1:]
                           if line.startswith("token: ")), None)
        return self

    def stderr(self) -> str:
        return self.err.read_text() if self.err.exists() else ""

    def client(self, **kwargs: Any) -> Client:
        return Client(self.url, **{"token": self.token, **kwargs})

    def headers(self) -> dict[str, str]:
        """The token's header (none with ``--no_token``)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

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


def worker(service: Service, *args: str, cwd: Path) -> subprocess.Popen[str]:
    """``sims/served/worker.py`` on ``service``, its token in ``HPSEARCH_TOKEN``."""
    env = {**hpsearch_env(), "HPSEARCH_TOKEN": service.token or ""}
    return subprocess.Popen([sys.executable, str(WORKER), service.url, *args], cwd=cwd,
                            env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal(out_dir: Path) -> list[dict[str, Any]]:
    with open(out_dir / "journal.jsonl") as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def ended(out_dir: Path) -> list[RunState]:
    """The runs the journal knows as ended, read as every tool reads it (a finished search's
    journal is compacted to one event per run, so raw ``end`` events may be gone)."""
    runs = replay(out_dir / "journal.jsonl").runs.values()
    return [r for r in runs if r.status in ("finished", "failed", "cancelled", "pruned")]


def raw(url: str, method: str = "GET", data: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """One HTTP call with urllib (no client of ours): the status and the JSON answer."""
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())
