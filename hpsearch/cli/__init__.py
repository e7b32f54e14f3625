"""The command line: ``hpsearch`` and its subcommands (the console script ``hpsearch.cli:main``)."""

from hpsearch.cli.app import main, main_group

__all__ = ["main", "main_group"]
