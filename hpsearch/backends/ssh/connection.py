"""How the driver talks to a host: the OpenSSH client, argv only, one connection per host.

Every call runs ``ssh`` as an argv list::

    ssh [-F <config>] -o BatchMode=yes -o ControlMaster=auto -o ControlPath=<dir>/%C
        -o ControlPersist=60 -o ConnectTimeout=10 -o ServerAliveInterval=5
        -o ServerAliveCountMax=3 [-l <user>] -- <address> <remote command>

``BatchMode`` never asks for a password; ``ControlMaster`` keeps one multiplexed connection
per host (its socket in :func:`control_dir`, a private directory with a short path: a socket
path must fit 108 bytes), so a call costs a few milliseconds once it is up. Without ``-F``
(:class:`Ssh`'s ``config``) ssh reads the user's ``~/.ssh/config``: host aliases, keys, jump
hosts and ports all come from there.

The remote command is an argv too: ssh hands its last argument to the user's login shell on
the host, so :func:`remote_command` quotes each word with :func:`shlex.quote` and joins them
with spaces; the shell's parse gives back exactly that argv. No value is ever read by a shell
as code (the hosts' login shells must be POSIX-like: sh, bash, zsh, dash).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hpsearch.backends.ssh.hosts import Host

#: what ssh exits with when it could not connect (or the connection broke)
SSH_FAILED = 255
#: seconds a connection attempt may take
CONNECT_TIMEOUT = 10
#: seconds one remote command may take before the host counts as not answering
COMMAND_TIMEOUT = 60.0


class Unreachable(RuntimeError):
    """A host did not answer; ``str()`` is one line, ssh's own words."""


def control_dir() -> Path:
    """``/tmp/hpsearch-ssh-<uid>``: this user's directory (mode 700) of connection sockets,
    shared by the user's searches (a restarted driver finds its connections up)."""
    path = Path(tempfile.gettempdir()) / f"hpsearch-ssh-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise Unreachable(f"{path} (ssh's connection sockets) is not a private directory of "
                          "this user; remove it, or set TMPDIR to a directory of your own")
    return path


def remote_command(argv: Sequence[str]) -> str:
    """The string ssh sends for ``argv``: each word quoted, so the host's shell rebuilds
    exactly ``argv`` (``['echo', 'a b']`` -> ``echo 'a b'``)."""
    return " ".join(shlex.quote(word) for word in argv)


class Ssh:
    """Runs commands on hosts through the ssh client; ``config``: an ssh configuration file
    (``ssh -F``) instead of ``~/.ssh/config``. :attr:`calls` counts the ssh commands run."""

    def __init__(self, config: str | None = None) -> None:
        self.config = config
        self.sockets = control_dir()
        self.calls = 0

    def argv(self, host: Host, remote: Sequence[str], *, master: bool = True) -> list[str]:
        """The ssh argv that runs ``remote`` (an argv) on ``host``."""
        argv = ["ssh"] + (["-F", self.config] if self.config else [])
        options = {"BatchMode": "yes", "ConnectTimeout": str(CONNECT_TIMEOUT),
                   "ServerAliveInterval": "5", "ServerAliveCountMax": "3"}
        if master:
            options.update(ControlMaster="auto", ControlPath=str(self.sockets / "%C"),
                           ControlPersist="60")
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        if host.user:
            argv += ["-l", host.user]
        return [*argv, "--", host.address, remote_command(remote)]

    def run(self, host: Host, remote: Sequence[str],
            timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run ``remote`` on ``host`` and wait; :class:`Unreachable` when ssh could not
        reach it (exit 255) or it took longer than ``timeout``; any other exit status is
        the remote command's, for the caller to judge."""
        self.calls += 1
        try:
            done = subprocess.run(self.argv(host, remote), capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise Unreachable(f"no answer within {timeout:g} s") from None
        except OSError as exc:
            raise Unreachable(f"cannot run ssh: {exc.strerror}") from None
        if done.returncode == SSH_FAILED:
            said = [line for line in done.stderr.splitlines() if line.strip()]
            raise Unreachable(said[-1].strip() if said else "ssh exited with 255")
        return done

    def start(self, host: Host, remote: Sequence[str]) -> subprocess.Popen[str]:
        """Start ``remote`` on ``host`` without waiting (output in pipes): several hosts'
        commands then run at once; :meth:`finish` collects one."""
        self.calls += 1
        return subprocess.Popen(self.argv(host, remote), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)

    @staticmethod
    def finish(popen: subprocess.Popen[str],
               timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """What :meth:`start`'s command answered, as :meth:`run` gives it."""
        try:
            out, err = popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.communicate()
            raise Unreachable(f"no answer within {timeout:g} s") from None
        if popen.returncode == SSH_FAILED:
            said = [line for line in err.splitlines() if line.strip()]
            raise Unreachable(said[-1].strip() if said else "ssh exited with 255")
        return subprocess.CompletedProcess(popen.args, popen.returncode, out, err)
