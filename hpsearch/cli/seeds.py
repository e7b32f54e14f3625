"""``hpsearch seeds``: the seeds search run through the command line with the recorded flags.

:mod:`hpsearch.inspect.seeds` writes the seeds search's grid and its summary; this module
reads the original search's recorded command with the CLI's own options (keeping the flags
that say how it runs, :data:`DROPPED` the ones that name it) and runs the seeds search as
``hpsearch`` would.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click

from hpsearch.inspect.seeds import finish_seeds, prepare_seeds

#: flags of the recorded command that name the search itself (not how it runs)
DROPPED = frozenset({"grid_module", "search_file", "grid_config", "algorithm", "out_dir",
                     "run_cwd", "num_searches", "dont_generate_full_grid",
                     "deterministic_search", "random_seed", "rerun_failed", "dry_run",
                     "force_out_dir", "dont_force_new_dir"})


def search_flags(group: click.Command, command: list[str]) -> list[str]:
    """The flags of ``command`` (a recorded ``hpsearch`` argv) that say how the search
    runs, as ``group`` (the ``hpsearch`` command) reads them."""
    with group.make_context("hpsearch", list(command), resilient_parsing=True) as ctx:
        flags = []
        for option in group.params:
            if not isinstance(option, click.Option) or option.name in DROPPED:
                continue
            if ctx.get_parameter_source(option.name) != click.core.ParameterSource.COMMANDLINE:
                continue
            value, flag = ctx.params[option.name], option.opts[0]
            if option.is_flag:
                flags += [flag] if value else []
            elif option.multiple:
                flags += [f"{flag}={v}" for v in value]
            else:
                flags.append(f"{flag}={value}")
    return flags


def run_seeds(group: click.Command, main: Callable[[list[str]], int], out_dir: Path, top: int,
              num_seeds: int, seed_arg: str, extra_args: list[str]) -> int:
    """Run (or resume) the seeds search with ``main`` (the ``hpsearch`` entry point), then
    write and print its summary; the search's exit status."""
    search = prepare_seeds(out_dir, top, num_seeds, seed_arg)
    argv = [*search.argv, *search_flags(group, search.command), *extra_args]
    os.chdir(search.cwd)
    status = main(argv)
    finish_seeds(out_dir, search, seed_arg, status, extra_args)
    return status
