"""Option declarations: each setting of a search is declared once, with its flag and checks.

A setting is a field of a frozen dataclass, with its flag, default, help and checks.

A backend (``backends/<name>/options.py``), the engine's run policy and the search itself
each declare a group::

    @dataclass(frozen=True)
    class SlurmOptions:
        TITLE: ClassVar[str] = "Slurm"
        slurm_mem: str = option("8G", "Slurm: sbatch --mem (empty: omit).", native="mem")

The field's name is the flag (``--slurm_mem``) unless ``flag=`` says otherwise, its
annotation the value's type (``bool``: an on/off flag; ``tuple[str, ...]``: a repeatable one),
its default the flag's default. The command line's flags, ``--help``, the docs' flag table and
the migration mappings are made from these declarations (:func:`declared`); :func:`settle`
checks and converts flag values into field values. Nothing here imports click: backends
declare their options without knowing the command line.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the ``metadata`` key of a declared field
_KEY = "hpsearch_option"
#: the default of a field every aggregate must be given (its flag has a ``flag_default``)
REQUIRED: Any = dataclasses.MISSING
#: a flag's default when it is the field's
_FIELD_DEFAULT: Any = object()


@dataclass(frozen=True)
class Spec:
    """How one field is given on the command line and checked.

    ``low``/``high``/``low_open`` bound a number (one line naming the bound when it is
    outside); ``check`` raises ``ValueError`` (one line) for a value it refuses; ``convert``
    turns the flag's value into the field's (raising ``ValueError`` likewise); ``choices`` lists
    the accepted words; ``native`` is the scheduler's own name of the setting (``sbatch
    --mem``), which migrated files use. ``needs`` names an on/off option this one is for: given
    while that one is off, the flag is refused with the other's ``enables`` (what it is for and
    how to turn it on) and this one's ``needs_note`` (the way without it).
    """

    help: str
    flag: str = ""
    aliases: tuple[str, ...] = ()
    flag_default: Any = _FIELD_DEFAULT
    show_default: bool = True
    metavar: str | None = None
    path: bool = False
    choices: Collection[str] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    check: Callable[[Any], None] | None = None
    convert: Callable[[Any], Any] | None = None
    native: str = ""
    needs: str = ""
    needs_note: str = ""
    enables: str = ""


def option(default: Any, help: str, **spec: Any) -> Any:
    """A declared field: ``default`` (the flag's too, unless ``flag_default=``; ``REQUIRED``:
    none), its help and the rest of its :class:`Spec`. Groups are ``kw_only`` dataclasses, so
    a field with a default may come before one without."""
    return dataclasses.field(default=default, metadata={_KEY: Spec(help=help, **spec)})


@dataclass(frozen=True)
class Declared:
    """One declared option as the command line sees it."""

    name: str  # the field
    group: str  # the heading it is listed under
    kind: str  # "flag" (on/off), "multiple" (repeatable text), "int", "float" or "str"
    default: Any  # the flag's default
    spec: Spec

    @property
    def flag(self) -> str:
        """The flag's name without dashes (``slurm_mem``)."""
        return self.spec.flag or self.name

    @property
    def help(self) -> str:
        """The flag's help text, as ``--help`` and the docs show it."""
        return self.spec.help


_KINDS = {bool: "flag", int: "int", float: "float", str: "str", Path: "str", tuple: "multiple"}


def _kind(annotation: Any) -> str:
    """``bool`` -> flag, ``int | None`` -> int, ``tuple[str, ...]`` -> multiple, ..."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = typing.get_origin(annotation) or annotation
    if base not in _KINDS and len(args) == 1:  # X | None
        base = typing.get_origin(args[0]) or args[0]
    return _KINDS[base]


def declared(group: type) -> tuple[Declared, ...]:
    """The options a group class declares, in the order it declares them."""
    hints = typing.get_type_hints(group)
    title = getattr(group, "TITLE", group.__name__)
    found = []
    for f in dataclasses.fields(group):
        spec = f.metadata.get(_KEY)
        if spec is None:
            continue
        default = f.default if spec.flag_default is _FIELD_DEFAULT else spec.flag_default
        found.append(Declared(f.name, title, _kind(hints[f.name]), default, spec))
    return tuple(found)


def check_range(flag: str, value: float | None, low: float, high: float | None = None,
                low_open: bool = False) -> None:
    """ValueError (one line) when ``--flag=value`` is not finite or outside the bounds."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ValueError(f"--{flag}={value} is not a finite number; give a number such as 1 "
                         "or 0.5")
    too_low = value <= low if low_open else value < low
    if too_low or (high is not None and value > high):
        bound = f"in ({low}, {high}]" if low_open and high is not None else \
            f"> {low}" if low_open else f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"--{flag}={value} is out of range; it must be {bound}")


def check_value(option: Declared, value: Any) -> Any:
    """The field's value for the flag's ``value``: checked, then converted (ValueError, one
    line naming the flag, when refused)."""
    spec = option.spec
    if spec.low is not None:
        check_range(option.flag, value, spec.low, spec.high, spec.low_open)
    if spec.choices and value not in spec.choices:
        raise ValueError(f"--{option.flag}={value} is not one of {', '.join(spec.choices)}")
    if spec.check is not None:
        spec.check(value)
    if option.kind == "multiple":
        value = tuple(value)
    return spec.convert(value) if spec.convert is not None else value


def settle(groups: Iterable[type], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Field values of ``groups`` from flag values (by flag name; a missing flag takes its
    default), each checked and converted; then an option given while the on/off option it
    ``needs`` is off is refused, and each group's ``check_together(values)`` (if it has one)
    checks what involves several fields, or sets a field whose default depends on another's
    (``--max_num_jobs_per_gpu`` on ``--runs_per_job``). ValueError names the flag."""
    groups = tuple(groups)
    options = {o.name: o for group in groups for o in declared(group)}
    values = {name: check_value(o, flags.get(o.flag, o.default)) for name, o in options.items()}
    for option in options.values():
        needed = options.get(option.spec.needs)
        if needed is not None and values[option.name] and not values[needed.name]:
            raise ValueError(f"--{option.flag} is for {needed.spec.enables}, or leave it "
                             f"out{option.spec.needs_note}")
    for group in groups:
        together = getattr(group, "check_together", None)
        if together is not None:
            together(values)
    return values


def own(group: type, options: Any) -> Any:
    """The ``group`` part of an aggregate of options (e.g. a backend's own options)."""
    return group(**{f.name: getattr(options, f.name) for f in dataclasses.fields(group)})
