"""Click options made from the option declarations, and a ``--help`` grouped by them.

The declarations are :mod:`hpsearch.options_decl`'s; ``--help`` lists the options under their
groups' headings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from hpsearch.options_decl import Declared, declared

_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str}


def click_option(option: Declared) -> Callable[[Any], Any]:
    """The ``click.option`` of one declaration (same flag, default, help; its help lists it
    under the declaration's group)."""
    spec = option.spec
    names = [f"--{option.flag}", *(f"--{alias}" for alias in spec.aliases), option.flag]
    settings: dict[str, Any] = {"help": spec.help, "cls": GroupedOption, "group": option.group}
    if option.kind == "flag":
        settings["is_flag"] = True
    elif option.kind == "multiple":
        settings.update(multiple=True, metavar=spec.metavar)
    else:
        settings.update(default=option.default, metavar=spec.metavar,
                        show_default=spec.show_default and option.default is not None)
        settings["type"] = (click.Choice(list(spec.choices)) if spec.choices else
                            click.Path(dir_okay=False) if spec.path else _TYPES[option.kind])
    return click.option(*names, **settings)


def declared_flags(groups: Iterable[type]) -> Callable[[Any], Any]:
    """A decorator adding the flags of every option ``groups`` declare, in their order."""
    options = [click_option(o) for group in groups for o in declared(group)]

    def add(func: Any) -> Any:
        for make in reversed(options):
            func = make(func)
        return func
    return add


class GroupedOption(click.Option):
    """A click option that knows the heading ``--help`` lists it under."""

    def __init__(self, *args: Any, group: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group


def format_grouped(command: click.Command, ctx: click.Context,
                   formatter: click.HelpFormatter) -> None:
    """``command``'s options for ``--help``, under their groups' headings (the options of no
    group first, as "Options")."""
    sections: dict[str, list[tuple[str, str]]] = {"Options": []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            sections.setdefault(getattr(param, "group", "") or "Options", []).append(record)
    for title, records in sections.items():
        if records:
            with formatter.section(title):
                formatter.write_dl(records)


class GroupedGroup(click.Group):
    """The main command: a group whose ``--help`` lists its flags by group."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_grouped(self, ctx, formatter)
        self.format_commands(ctx, formatter)


class GroupedCommand(click.Command):
    """A subcommand whose ``--help`` lists its flags by group."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_grouped(self, ctx, formatter)
