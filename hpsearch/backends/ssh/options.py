"""The SSH hosts' options: which workstations, how to reach them, when one counts as gone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hpsearch.options_decl import option

#: env var naming an ssh client configuration file to use instead of ``~/.ssh/config``
SSH_CONFIG_ENV = "HPSEARCH_SSH_CONFIG"
#: the file in the search directory where the driver keeps the hosts' state for ``hpsearch
#: status``: ``{"hosts": {"gpu1": {"state": "up", "error": "", "runs": ["3f2a..."]}}}``
#: (``state``: ``up`` or ``not answering``, ``error``: ssh's words then)
STATUS_FILE = "ssh_hosts.json"


def _check_hosts(value: str) -> None:
    names = [part.strip() for part in value.split(",")]
    if value.strip() and (not all(names) or len(set(names)) != len(names)):
        raise ValueError(f"--hosts={value!r} is not a list of distinct host names; write e.g. "
                         "--hosts=gpu1,gpu2,gpu3")


@dataclass(frozen=True, kw_only=True)
class SshOptions:
    """Where the workstations are (``--hosts`` or ``--hosts_file``) and how ssh reaches them.
    Either one runs the search on those hosts over SSH instead of on this machine."""

    TITLE: ClassVar[str] = "SSH hosts"
    hosts: str = option(
        "", "Run on these workstations over SSH: comma-separated ssh destinations (names of "
        "your ~/.ssh/config), e.g. gpu1,gpu2,gpu3.", show_default=False, check=_check_hosts)
    hosts_file: str = option(
        "", "Run on the workstations a YAML file lists, with each one's address, user, gpus, "
        "slots and python.", show_default=False, path=True)
    ssh_config: str = option(
        "", "The ssh client configuration file to use (ssh -F); default: "
        f"${SSH_CONFIG_ENV}, else your ~/.ssh/config.", show_default=False, path=True)
    host_grace: float = option(
        60.0, "Seconds a host may not answer before its runs are run again elsewhere "
        "(not charged).", low=0, flag_default=60)

    @staticmethod
    def check_together(values: dict[str, Any]) -> None:
        """``--hosts`` and ``--hosts_file`` are one choice."""
        if values.get("hosts") and values.get("hosts_file"):
            raise ValueError("--hosts and --hosts_file both name the hosts; give one of them")

    @property
    def on_hosts(self) -> bool:
        """Whether runs go to SSH hosts."""
        return bool(self.hosts or self.hosts_file)


def for_driver(options: Any, mem: str, partition: str | None) -> dict[str, Any]:
    """Nothing to change: there is no driver job on SSH hosts (``hpsearch wrap`` refuses)."""
    return {}
