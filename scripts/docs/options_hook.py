"""MkDocs hook: the command line's flag table, made from the option declarations.

``docs/reference/cli.md`` holds the marker ``<!-- options -->``; at build time it is replaced
by one table per group of :data:`hpsearch.engine.options.OPTION_GROUPS` (the search, the run
policy, where runs go, local GPUs, cluster jobs, then every scheduler of
:data:`hpsearch.backends.SCHEDULERS`) and one for ``hpsearch wrap``'s own flags: flag,
default, what it does -- the same declarations the flags and ``--help`` come from.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- options -->"


def on_page_markdown(markdown: str, page: Any, **_kwargs: Any) -> str:
    """Fill the marker of the command line page; every other page passes unchanged."""
    if MARKER not in markdown:
        return markdown
    from hpsearch.backends.cluster.options import DriverJob
    from hpsearch.engine.options import OPTION_GROUPS

    tables = [table(group) for group in OPTION_GROUPS]
    tables.append(table(DriverJob, "`hpsearch wrap`: "))
    return markdown.replace(MARKER, "\n".join(tables))


def table(group: type, prefix: str = "") -> str:
    """One group as a Markdown section with a table of its flags."""
    from hpsearch.options_decl import declared

    lines = [f"### {prefix}{group.TITLE}\n", "| flag | default | what it does |",
             "| --- | --- | --- |"]
    for option in declared(group):
        names = ", ".join(f"`--{name}`" for name in (option.flag, *option.spec.aliases))
        lines.append(f"| {names} | {_default(option)} | {_cell(option.help)} |")
    return "\n".join(lines) + "\n"


def _default(option: Any) -> str:
    if option.kind == "flag":
        return "off"
    if option.kind == "multiple":
        return "none"
    if option.default is None:
        return "(see text)"
    return f"`{option.default}`" if option.default != "" else "empty"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
