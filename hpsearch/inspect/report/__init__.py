"""``hpsearch report``: one self-contained HTML file about a search, or its best runs' table.

The table (``--terminal``) fits a terminal.

:func:`write_report` reads the search (:func:`hpsearch.inspect.view.load_view`), builds the
page's data (:mod:`.data`: runs, curves, the timeline's bars, importance, the Pareto
front), writes the summary and failures as HTML (:mod:`.sections`) and puts it all in one
page with plotly.js and our script inline (:mod:`.page`). Plots are drawn in the browser
by ``assets/report.js``.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

from hpsearch.errors import UsageError
from hpsearch.inspect.collect import status_line
from hpsearch.inspect.report import data, page, sections
from hpsearch.inspect.toptable import render
from hpsearch.inspect.view import load_view

REPORT_FILE = "report.html"

__all__ = ["REPORT_FILE", "report_cli", "terminal_table", "write_report"]


def write_report(out_dir: Path, output: Path | None, grid_module: str | None = None
                 ) -> tuple[Path, int]:
    """Write the report of the search in ``out_dir`` (to ``output``, default
    ``<out_dir>/report.html``, replaced whole); returns its path and how many runs it shows."""
    view = load_view(out_dir, grid_module)
    html = page.render(f"hpsearch report: {out_dir.name}", sections.summary(view),
                       sections.failures(view), data.build(view))
    path = output if output is not None else out_dir / REPORT_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write the report to {path} ({exc.strerror}); pass "
                         "-o PATH somewhere you can write") from None
    return path, len(view.runs)


def terminal_table(out_dir: Path, top: int, grid_module: str | None = None,
                   width: int = 100) -> str:
    """The status line and the ``top`` best runs, no wider than ``width``."""
    view = load_view(out_dir, grid_module)
    head = status_line(out_dir, view.record.meta, view.record.states)
    return textwrap.fill(head, width, subsequent_indent="  ") + "\n" + render(view, top, width)


def report_cli(out_dir: Path, output: Path | None, terminal: bool, top: int,
               grid_module: str | None) -> None:
    """``hpsearch report``: write the page and say where, or print the table."""
    if top < 1:
        raise UsageError(f"--top={top} is out of range; give a count >= 1")
    if terminal:
        if output is not None:
            raise UsageError("--terminal prints a table and writes no file; leave out -o, "
                             "or --terminal to write the HTML report")
        sys.stdout.write(terminal_table(out_dir, top, grid_module))
        return
    path, runs = write_report(out_dir, output, grid_module)
    size = path.stat().st_size / 2**20
    sys.stdout.write(f"{path}: report of {runs} runs ({size:.1f} MiB, opens offline)\n")
