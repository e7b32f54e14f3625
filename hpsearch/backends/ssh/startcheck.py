"""The start check of a search on SSH hosts: every host answers and sees the search directory.

:func:`probe_all` and :func:`check_shared`; each failure is one line naming the hosts.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

from hpsearch.backends.ssh.connection import Ssh, Unreachable
from hpsearch.backends.ssh.hosts import Host
from hpsearch.backends.ssh.remote import HostState, parse_probe, probe_argv
from hpsearch.errors import UsageError


def probe_all(ssh: Ssh, hosts: Sequence[Host], gpus: bool = True) -> dict[str, HostState]:
    """Probe every host at once (``gpus``: their GPUs too); UsageError naming each host that
    does not answer."""
    popens = {host.name: ssh.start(host, probe_argv(gpus)) for host in hosts}
    states, failed = {}, []
    for host in hosts:
        try:
            states[host.name] = parse_probe(ssh.finish(popens[host.name]).stdout)
        except (Unreachable, ValueError) as exc:
            failed.append(f"{host.name} ({exc})")
    if failed:
        raise UsageError(f"SSH host(s) not answering: {'; '.join(failed)}; check the name, "
                         "your ssh configuration and that `ssh -o BatchMode=yes HOST true` "
                         "works, or leave the host out")
    return states


def check_shared(ssh: Ssh, hosts: Sequence[Host], out_dir: Path) -> None:
    """Write a token file next to the search directory (in it, if it exists; else in its
    nearest existing parent) and read it back on every host at once; UsageError naming
    each host that reads something else. The token file is removed."""
    where = out_dir
    while not where.is_dir():
        where = where.parent
    token = secrets.token_hex(8)
    path = where / f".hpsearch-ssh-check-{token}"
    try:
        path.write_text(token + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror}) to check that the SSH hosts "
                         "see the search directory; pass an --out_dir you can write") from None
    try:
        popens = {host.name: ssh.start(host, ["cat", "--", str(path)]) for host in hosts}
        blind = []
        for host in hosts:
            try:
                seen = ssh.finish(popens[host.name]).stdout.strip()
            except Unreachable as exc:
                seen = f"({exc})"
            if seen != token:
                blind.append(host.name)
    finally:
        path.unlink(missing_ok=True)
    if blind:
        raise UsageError(f"SSH host(s) {', '.join(blind)} do not see the search directory "
                         f"{out_dir} (a token file written in {where} cannot be read there); "
                         "put --out_dir on a filesystem every host mounts at the same path")
