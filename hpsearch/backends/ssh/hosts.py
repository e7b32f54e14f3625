"""The workstations a search runs on: ``--hosts gpu1,gpu2`` or a hosts file.

A hosts file (``--hosts_file hosts.yaml``) maps each host's name to what hpsearch needs of it,
every key optional::

    hosts:
      gpu1:
        address: 10.0.0.11        # what ssh connects to (default: the name, which
                                  # ~/.ssh/config may map further)
        user: alice               # ssh -l (default: ssh's, i.e. ~/.ssh/config's)
        gpus: [0, 1]              # the GPUs runs may use (default: all; []: none)
        slots: 8                  # runs at once (default: one per CPU of the host)
        python: /opt/venv/bin/python   # the interpreter of its runs (default: --python's)
      gpu2: {}

The name is what results (``host``), job ids (``gpu1:4242``) and messages use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.spec.datafile import load_yaml

_KEYS = ("address", "user", "gpus", "slots", "python")


@dataclass(frozen=True)
class Host:
    """One workstation: its ``name``, the ssh ``address`` and ``user`` (None: ssh's
    default), the ``gpus`` runs may use (None: all), ``slots`` (None: one per CPU) and the
    runs' ``python`` (None: the search's)."""

    name: str
    address: str
    user: str | None = None
    gpus: tuple[int, ...] | None = None
    slots: int | None = None
    python: str | None = None


def hosts_from_flag(value: str) -> list[Host]:
    """``"gpu1,gpu2"`` -> hosts of those names, reached under those names."""
    return [Host(name, name) for name in (part.strip() for part in value.split(","))]


def hosts_from_file(path: Path) -> list[Host]:
    """The hosts of a hosts file (see the module docstring); ValueError (one line) naming
    the file, the host and the key for anything else."""
    where = f"--hosts_file={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{where} cannot be read ({exc.strerror}); pass an existing "
                         "hosts file") from None
    data = load_yaml(text, where)
    table = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{where} lists no host; write 'hosts:' with one entry per host, "
                         "e.g. 'hosts: {gpu1: {address: 10.0.0.11}}'")
    return [_host(str(name), entry, where) for name, entry in table.items()]


def _host(name: str, entry: Any, where: str) -> Host:
    entry = {} if entry is None else entry
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: host {name} must be a mapping of {', '.join(_KEYS)}")
    unknown = [key for key in entry if key not in _KEYS]
    if unknown:
        raise ValueError(f"{where}: host {name} has an unknown key {unknown[0]!r}; the keys "
                         f"are {', '.join(_KEYS)}")
    gpus = entry.get("gpus")
    if gpus is not None and not (isinstance(gpus, list) and all(
            isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus)):
        raise ValueError(f"{where}: host {name}'s gpus must be a list of GPU indices, "
                         "e.g. [0, 1]")
    slots = entry.get("slots")
    if slots is not None and not (isinstance(slots, int) and not isinstance(slots, bool)
                                  and slots >= 1):
        raise ValueError(f"{where}: host {name}'s slots must be a whole number >= 1")
    for key in ("address", "user", "python"):
        if entry.get(key) is not None and not (isinstance(entry[key], str) and entry[key]):
            raise ValueError(f"{where}: host {name}'s {key} must be a non-empty string")
    return Host(name, entry.get("address") or name, entry.get("user"),
                None if gpus is None else tuple(gpus), slots, entry.get("python"))


def hosts_of(hosts: str, hosts_file: str) -> list[Host]:
    """The hosts ``--hosts`` or ``--hosts_file`` names (ValueError, one line, if bad)."""
    return hosts_from_file(Path(hosts_file)) if hosts_file else hosts_from_flag(hosts)
