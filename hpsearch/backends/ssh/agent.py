"""A shell kept open on a host that starts runs there without a new ssh command each.

An ssh command costs a session on the host (its login shell, a few forks: 10-20 ms even over
the shared connection), and the driver waits for each. So each host gets one long-lived
``ssh <host> /bin/sh -c <AGENT> hpsearch-agent <wrapper script>`` (over the same
``ControlMaster`` connection): it keeps the job wrapper's script in ``$hps_script`` and runs
one start per line it reads, printing the wrapper's pid::

    ( setsid env 'HPSEARCH_RUN_ID=3f2a91c04b1e' ... /bin/sh -c "$hps_script" hpsearch-run
        '/lab/out/runs/3f2a91c04b1e' k3f9a1c2 '' gpu1 /lab/sims ... </dev/null >/dev/null 2>&1 &
        echo $! )

(one line; in a subshell, so that the wrapper is not the agent's child: the agent never
reaps, an ended wrapper of its own would stay a zombie that ``ps`` lists). Every value in the
line is quoted with :func:`shlex.quote`, like the words of a remote command
(:func:`~hpsearch.backends.ssh.connection.remote_command`); the rest is constant text.
A start whose words hold a newline cannot be one line: :meth:`Agent.send` refuses it
(:class:`NotOneLine`) and the caller starts it with an ssh command of its own. An agent whose
connection broke is started again by the next :meth:`Agent.send`; when the driver ends (or is
killed), its ssh client's stdin closes and the agent's shell ends; the runs it started do not
(they are in sessions of their own).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Sequence

from hpsearch.backends.ssh.connection import Ssh, Unreachable, remote_command
from hpsearch.backends.ssh.hosts import Host
from hpsearch.backends.ssh.remote import Start
from hpsearch.runs.wrapper import LOCAL_NAME, LOCAL_SCRIPT

#: the agent: runs each line it reads (a start, see the module docstring)
AGENT_SCRIPT = 'hps_script=$1\nwhile IFS= read -r hps_line; do eval "$hps_line"; done\n'
#: seconds to wait for the pids of one round of starts
ANSWER_TIMEOUT = 30.0


class NotOneLine(ValueError):
    """A start whose words hold a newline: it cannot be sent as one line."""


def start_line(start: Start) -> str:
    """The one line that starts ``start`` and prints its wrapper's pid."""
    words = [start.run_dir, start.launch, start.host, start.cwd, *start.argv,
             *(f"{k}={v}" for k, v in start.env.items())]
    if any("\n" in word or "\r" in word for word in words):
        raise NotOneLine(f"run {start.run_dir}: a word holds a newline")
    env = ["env", *(f"{k}={v}" for k, v in start.env.items())] if start.env else []
    wrapper = [LOCAL_NAME, start.run_dir, start.launch, "", start.host, start.cwd, *start.argv]
    return (f"( {remote_command(['setsid', *env, '/bin/sh', '-c'])} \"$hps_script\" "
            f"{remote_command(wrapper)} </dev/null >/dev/null 2>&1 & echo $! )\n")


class Agent:
    """The agent shell of one host (started on first use)."""

    def __init__(self, ssh: Ssh, host: Host) -> None:
        self.ssh, self.host = ssh, host
        self._popen: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def send(self, starts: Sequence[Start]) -> None:
        """Send the lines of ``starts`` (:class:`NotOneLine` before sending any when one
        cannot be a line; :class:`Unreachable` when the agent cannot be reached)."""
        text = "".join(start_line(s) for s in starts).encode()
        if self._popen is None or self._popen.poll() is not None:
            self._open()
        assert self._popen is not None and self._popen.stdin is not None
        try:
            self._popen.stdin.write(text)
            self._popen.stdin.flush()
        except OSError as exc:
            self.close()
            raise Unreachable(f"the connection broke ({exc.strerror})") from None

    def receive(self, count: int, timeout: float = ANSWER_TIMEOUT) -> list[int]:
        """The pids of the ``count`` starts sent last, in order."""
        assert self._popen is not None and self._popen.stdout is not None
        fd = self._popen.stdout.fileno()
        give_up = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while self._buffer.count(b"\n") < count:
                left = give_up - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.close()
                    raise Unreachable(f"no answer within {timeout:g} s")
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.close()
                    raise Unreachable("the connection broke")
                self._buffer += chunk
        lines = self._buffer.split(b"\n")
        answer, self._buffer = lines[:count], b"\n".join(lines[count:])
        try:
            return [int(line) for line in answer]
        except ValueError:
            self.close()
            raise Unreachable(f"the host answered {answer!r}, not pids") from None

    def _open(self) -> None:
        self.ssh.calls += 1
        self._buffer = b""
        self._popen = subprocess.Popen(
            self.ssh.argv(self.host, ["/bin/sh", "-c", AGENT_SCRIPT, "hpsearch-agent",
                                      LOCAL_SCRIPT]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        """End the agent (its shell ends when its stdin closes)."""
        popen, self._popen = self._popen, None
        if popen is None:
            return
        for stream in (popen.stdin, popen.stdout):
            if stream is not None:
                stream.close()
        try:
            popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
