"""A session fixture that starts the SSH hosts of scripts/ssh/start.sh (one sshd per loopback
address, each with two fake GPUs of its own), and a private host a test may kill.

Import ``ssh_hosts`` into a test module. Set ``HPSEARCH_SKIP_SSH=1`` to skip those tests;
otherwise hosts that cannot start FAIL them. The hosts' ssh configuration (``Host gpu1`` ->
``HostName 127.0.0.2``, the key start.sh made) is :attr:`SshHosts.config`; hpsearch gets it
through ``HPSEARCH_SSH_CONFIG`` (:meth:`SshHosts.env`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START = Path(__file__).resolve().parent.parent / "scripts" / "ssh" / "start.sh"
STATE = Path(os.environ.get("HPSEARCH_SSH_STATE", "/var/lib/hpsearch-ssh"))
PORT = os.environ.get("HPSEARCH_SSH_PORT", "2222")


@dataclass(frozen=True)
class SshHosts:
    """The running hosts: ``gpu1``..``gpu3`` see this machine's files, ``gpu4`` has a /tmp of
    its own; ``config`` is the ssh client configuration naming them."""

    config: Path

    names = ("gpu1", "gpu2", "gpu3")
    blind = "gpu4"

    def env(self, config: Path | None = None) -> dict[str, str]:
        """The environment of a user's shell that points hpsearch at these hosts."""
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env["HPSEARCH_SSH_CONFIG"] = str(config or self.config)
        return env

    def gpu_state(self, name: str) -> Path:
        """The fake GPUs' state directory of host ``name``."""
        return STATE / name / "gpus"


class PrivateHost:
    """An sshd of the test's own (``sshd -D``, a child of the test) on ``address``, with two
    fake GPUs of its own, reached as ``name`` through :attr:`config` (which includes the
    shared hosts' configuration): a host the test may kill and start again."""

    def __init__(self, tmp: Path, name: str, address: str) -> None:
        self.name, self.address, self.dir = name, address, tmp / name
        (self.dir / "gpus").mkdir(parents=True)
        (self.dir / "home").mkdir()
        self.config = tmp / "ssh_config"
        self.config.write_text(f"Include {STATE / 'ssh_config'}\n\nHost {name}\n"
                               f"    HostName {address}\n")
        shared = (STATE / "gpu1" / "sshd_config").read_text().splitlines()
        lines = [line for line in shared if not line.startswith(
            ("ListenAddress", "PidFile", "SetEnv"))]
        lines += [f"ListenAddress {address}", f"PidFile {self.dir / 'sshd.pid'}",
                  f"SetEnv HOME={self.dir / 'home'} PATH={STATE / 'bin'}:/usr/local/bin:"
                  f"/usr/bin:/bin FAKE_GPUS=2x16384 FAKE_GPU_STATE={self.dir / 'gpus'} "
                  f"HPSEARCH_SSH_TEST_HOST={name}"]
        (self.dir / "sshd_config").write_text("\n".join(lines) + "\n")
        self.sshd: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start its sshd and wait until it answers."""
        self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(self.dir / "sshd_config")],
                                     stdin=subprocess.DEVNULL)
        give_up = time.monotonic() + 60
        while subprocess.run(["ssh", "-F", str(self.config), "-o", "BatchMode=yes",
                              "-o", "ControlPath=none", self.name, "true"],
                             capture_output=True, check=False).returncode != 0:
            assert time.monotonic() < give_up, f"sshd of {self.name} does not answer"
            time.sleep(0.1)

    def kill(self) -> None:
        """Kill its sshd and every process it forked for a connection (the connections
        break at once); runs started detached there go on."""
        assert self.sshd is not None
        for pid in [*descendants(self.sshd.pid), self.sshd.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.sshd.wait()
        self.sshd = None


def descendants(pid: int) -> list[int]:
    """The processes whose parent chain reaches ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


@functools.cache
def start_hosts() -> SshHosts:
    """Start (or find running) the SSH hosts, once per test process."""
    done = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=600,
                          check=False)
    if done.returncode != 0:
        pytest.fail(f"{START} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return SshHosts(STATE / "ssh_config")


@pytest.fixture
def ssh_hosts() -> Iterator[SshHosts]:
    """The SSH hosts, to this test alone: their fake GPUs are machine-wide, so the tests using
    them take turns (an exclusive ``flock`` held for the test, across the test workers that
    scripts/test.sh runs side by side, and across test sessions)."""
    if os.environ.get("HPSEARCH_SKIP_SSH") == "1":
        pytest.skip("HPSEARCH_SKIP_SSH=1: tests against the local SSH hosts skipped")
    hosts = start_hosts()
    with open(STATE / "tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield hosts
