"""What each run needs, as a search declares it (``resources:``, ``_RESOURCES``, flags).

``resources:`` in a search file, ``_RESOURCES`` in a grid module, and the ``--gpus_per_run``
style flags.

A search file reads either a mapping (every run)::

    resources: {gpus: 2, cpus: 8, mem: 64G, nodes: 1}

or a list of rules, the first whose ``when`` matches a run's configuration wins (a rule
without ``when`` matches every run; a run no rule matches keeps the defaults)::

    resources:
      - when: {model: large}        # parameter: value, or a list of values (any of them)
        gpus: 4
        mem: 64G
      - gpus: 1

A grid module's ``_RESOURCES`` holds the same, as Python: ``{"gpus": 2}`` or ``[{"when":
{"model": "large"}, "gpus": 4}, {"gpus": 1}]``. Keys: ``gpus`` (GPUs, 0 or more), ``cpus``
(CPUs, 1 or more), ``mem`` (memory of the run's job: ``64G``, ``512M``, ``2T``, binary units; a
plain number is MiB, as Slurm reads it), ``nodes`` (machines, 1 or more). A key left out keeps
what the flags and the backend give (:mod:`hpsearch.engine.placement`).

The flags ``--gpus_per_run``, ``--cpus_per_run``, ``--mem_per_run``, ``--nodes_per_run``
(:class:`ResourceOptions`) set their key for every run, over the file's rules.

How a run's command is started on its nodes is the search's ``launcher:`` (``_LAUNCHER``,
``--launcher``, which wins): one of :data:`LAUNCHERS`, or none (the command as it is)::

    launcher: torchrun

:mod:`hpsearch.runs.launchers` turns it into the run's argv.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from hpsearch.errors import UsageError
from hpsearch.options_decl import option

#: the values of ``launcher:`` (``_LAUNCHER``, ``--launcher``)
LAUNCHERS = ("torchrun", "srun", "mpirun")
#: the keys of one declaration, besides ``when``
KEYS = ("gpus", "cpus", "mem", "nodes")
_LEAST = {"gpus": 0, "cpus": 1, "nodes": 1}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_UNIT = {"K": 1024, "": 1024 ** 2, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}


def memory_bytes(text: str | int, where: str) -> int:
    """``"64G"`` -> bytes (K/M/G/T binary, an optional ``B``/``iB``; a plain number: MiB).
    ValueError (one line naming ``where``) for anything else."""
    match = _MEMORY.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{where}={text!r} is not an amount of memory; write e.g. 64G, "
                         "512M or 2T")
    return round(float(match.group(1)) * _UNIT[match.group(2).upper()])


@dataclass(frozen=True)
class Shape:
    """What one declaration sets (None: left to the flags and the backend). ``memory`` is
    bytes; the other fields are counts, named as :class:`hpsearch.runs.model.Resources`
    names them."""

    gpus: int | None = None
    cpus: int | None = None
    memory: int | None = None
    nodes: int | None = None

    def fields(self) -> dict[str, int]:
        """The fields it sets, by name."""
        return {k: v for k, v in vars(self).items() if v is not None}

    def over(self, other: Shape) -> Shape:
        """This shape, with ``other``'s values where this one sets none."""
        return Shape(**{**other.fields(), **self.fields()})


@dataclass(frozen=True)
class ResourceRule:
    """One rule: ``when`` (parameter -> the values it matches; empty: every run), ``shape``."""

    when: tuple[tuple[str, tuple[Any, ...]], ...]
    shape: Shape

    def matches(self, config: Mapping[str, Any]) -> bool:
        return all(name in config and config[name] in values for name, values in self.when)


@dataclass(frozen=True)
class ResourceRules:
    """A search's declarations, in order; :meth:`shape_of` picks a run's."""

    rules: tuple[ResourceRule, ...] = ()

    def shape_of(self, config: Mapping[str, Any]) -> Shape:
        """The first matching rule's shape (none matches: an empty shape)."""
        return next((r.shape for r in self.rules if r.matches(config)), Shape())

    def shapes(self) -> list[Shape]:
        """Every shape a rule can give."""
        return [r.shape for r in self.rules]


def _count(key: str, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < _LEAST[key]:
        raise UsageError(f"{where}: {key} must be a whole number >= {_LEAST[key]}, not "
                         f"{value!r}")
    return value


def _shape(entry: Mapping[str, Any], where: str) -> Shape:
    unknown = [str(k) for k in entry if k not in (*KEYS, "when")]
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; a declaration takes "
                         f"{', '.join(KEYS)} (and when: in a list of rules)")
    try:
        memory = None if entry.get("mem") is None else memory_bytes(entry["mem"], "mem")
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return Shape(**{k: _count(k, entry[k], where) for k in ("gpus", "cpus", "nodes")
                    if entry.get(k) is not None}, memory=memory)


def _when(raw: Any, where: str, parameters: Collection[str]) -> tuple[tuple[str, tuple], ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise UsageError(f"{where}: when must map parameters to values, e.g. when: "
                         f"{{model: large}}, not {raw!r}")
    for name in raw:
        if name not in parameters:
            raise UsageError(f"{where}: when names {name!r}, which is no parameter of the "
                             f"search ({', '.join(map(str, parameters))}); fix the name")
    return tuple((str(k), tuple(v) if isinstance(v, list) else (v,)) for k, v in raw.items())


def parse_resources(raw: Any, where: str, parameters: Collection[str]) -> ResourceRules:
    """A ``resources:`` setting (module docstring) -> rules; None: none. UsageError (one line
    starting with ``where``) for a bad one, a ``when`` naming no parameter of ``parameters``
    included."""
    if raw is None:
        return ResourceRules()
    if isinstance(raw, Mapping):
        if "when" in raw:
            raise UsageError(f"{where}: when: belongs to a rule of a list; write "
                             "resources: [{when: {...}, gpus: 2}, {gpus: 1}]")
        return ResourceRules((ResourceRule((), _shape(raw, where)),))
    if not isinstance(raw, list) or not raw:
        raise UsageError(f"{where} must be a mapping such as {{gpus: 2, mem: 64G}} or a "
                         f"non-empty list of rules, not {raw!r}")
    rules = []
    for number, entry in enumerate(raw, 1):
        here = f"{where} rule {number}"
        if not isinstance(entry, Mapping):
            raise UsageError(f"{here} must be a mapping such as {{when: {{model: large}}, "
                             f"gpus: 4}}, not {entry!r}")
        when = _when(entry["when"], here, parameters) if "when" in entry else ()
        rules.append(ResourceRule(when, _shape(entry, here)))
    return ResourceRules(tuple(rules))


def parse_launcher(raw: Any, where: str) -> str | None:
    """A ``launcher:`` setting -> one of :data:`LAUNCHERS`, or None when unset; UsageError
    (one line starting with ``where``) for anything else."""
    if raw is None or raw in LAUNCHERS:
        return raw
    raise UsageError(f"{where} must be one of {', '.join(LAUNCHERS)} (or left out: the "
                     f"command as it is), not {raw!r}")


def _check_launcher(value: str | None) -> None:
    if value is not None and value not in LAUNCHERS:
        raise ValueError(f"--launcher={value} is not one of {', '.join(LAUNCHERS)}")


def _check_memory(value: str | None) -> None:
    if value:
        memory_bytes(value, "--mem_per_run")


@dataclass(frozen=True, kw_only=True)
class ResourceOptions:
    """What every run needs, over the search file's ``resources:`` (``_RESOURCES``)."""

    TITLE: ClassVar[str] = "Resources per run"
    gpus_per_run: int | None = option(
        None, "GPUs each run takes: locally that many GPUs that each admit it at once; on a "
        "cluster its job's GPU request (over resources: and the scheduler's GPU flags).", low=0)
    cpus_per_run: int | None = option(
        None, "CPUs each run takes: that many local CPU slots; on a cluster its job's CPUs.",
        low=1)
    mem_per_run: str | None = option(
        None, "Memory of each run's job, e.g. 64G or 512M (binary units; a plain number is "
        "MiB); on a cluster over the scheduler's memory flags.", check=_check_memory)
    nodes_per_run: int | None = option(
        None, "Machines each run's job spans (a cluster's --nodes).", low=1)
    launcher: str | None = option(
        None, "How each run's command starts on its nodes, over the search file's launcher: "
        "torchrun (through torch.distributed.run, one process per GPU of each node), or srun "
        "or mpirun (the command as given, which launches itself); unset: the command as it "
        "is.", check=_check_launcher)

    def shape(self) -> Shape:
        """What these flags set."""
        return Shape(gpus=self.gpus_per_run, cpus=self.cpus_per_run,
                     memory=None if not self.mem_per_run
                     else memory_bytes(self.mem_per_run, "--mem_per_run"),
                     nodes=self.nodes_per_run)
