"""The report's two text sections, written as HTML here: the summary and the failures.

(The plots are drawn in the browser from the page's data, :mod:`hpsearch.inspect.report.data`.)
Every value is escaped. The summary holds the counts by status, the best run (its metrics,
configuration and the command that reruns it), compute time (the spans of every start,
earlier attempts included), GPU- and CPU-hours with what went to failed, pruned and
preempted attempts (:mod:`hpsearch.backends.accounting`), the search's wall time (first
start to last end, or to now while runs are active), fixed parameters, and the best runs.
The failures section lists every reason with its count (runs failing alike, numbers aside,
counted together: :func:`~hpsearch.runs.summary.failure_groups`, as ``hpsearch status`` does),
then each failed run with its reason and the last lines of its ``stderr.log``.
"""

from __future__ import annotations

import datetime
from html import escape

from hpsearch.backends.accounting import describe, search_totals
from hpsearch.inspect.collect import best_finished, driver_state, search_counts
from hpsearch.inspect.toptable import best_rows, duration, number
from hpsearch.inspect.view import SearchView, display, rerun_command
from hpsearch.runs.files import STDERR_FILE, tail_lines
from hpsearch.runs.summary import failure_groups

#: failed runs whose stderr is shown (the others are listed with their reason only)
MAX_STDERR_SHOWN = 200
STDERR_LINES = 12
TOP_RUNS = 10


def _when(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _dl(items: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _table(columns: list[str], rows: list[list[str]], numeric: list[bool], css: str) -> str:
    def cell(tag: str, text: str, j: int) -> str:
        return f'<{tag} class="{"num" if numeric[j] else "txt"}">{escape(text)}</{tag}>'

    head = "".join(cell("th", c, j) for j, c in enumerate(columns))
    body = "".join("<tr>" + "".join(cell("td", c, j) for j, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _times(view: SearchView) -> list[tuple[str, str]]:
    spans = [s for r in view.runs for s in r.spans]
    if not spans:
        return [("compute time", "no start recorded")]
    compute = sum(s.seconds(view.now) for s in spans)
    usage = search_totals(r.state.usage for r in view.runs)
    gpu = sum(s.seconds(view.now) * s.gpus for s in spans) if not usage else 0.0
    first = min(s.start for s in spans)
    active = any(s.end is None for s in spans)
    last = view.now if active else max(s.end for s in spans if s.end is not None)
    items = [("compute time", f"{duration(compute)} ({len(spans)} starts)")]
    if usage:  # what the driver recorded of each ended attempt (hpsearch/backends/accounting.py)
        items += [("GPU-hours", describe(usage, 0)), ("CPU-hours", describe(usage, 1))]
    elif gpu:  # a search directory older than those records: its spans' GPUs
        items.append(("GPU-hours", f"{gpu / 3600:.2f}"))
    items.append(("wall time", f"{duration(last - first)} ({_when(first)} to "
                  f"{'now' if active else _when(last)})"))
    return items


def summary(view: SearchView) -> str:
    """The summary section's inner HTML."""
    meta = view.meta
    counts = search_counts(view.out_dir, view.record.meta, view.record.states)
    pills = "".join(f'<span class="pill {escape(s)}" data-status="{escape(s)}" '
                    f'data-count="{n}">{n} {escape(s)}</span>' for s, n in counts.items()
                    if n or s in ("finished", "failed"))
    objectives = ", ".join(f"{k} ({d})" for k, d in zip(view.objectives, view.directions,
                                                         strict=True))
    about = [("search directory", escape(str(view.out_dir))),
             ("algorithm", escape(str(meta.get("algorithm", "grid (hypnettorch)")))),
             ("backend", escape(str(meta.get("backend", "unknown")))),
             ("objective", escape(objectives)),
             ("driver", escape(driver_state(view.out_dir))),
             ("report written", escape(_when(view.now)))]
    parts = [f'<div class="pills">{pills}</div>', _dl(about + [
        (k, escape(v)) for k, v in _times(view)])]
    fixed = [(p.name, p.values[0]) for p in view.parameters if p.values and not p.varies]
    if fixed:
        parts.append("<p>fixed: " + escape(", ".join(f"{k}={v}" for k, v in fixed)) + "</p>")
    key, ascending = view.objectives[0], view.directions[0] == "minimize"
    constraints = view.record.layout.constraints
    best = best_finished(view.record.states.values(), key, ascending, constraints)
    if not best:
        parts.append("<p>No run has finished yet.</p>")
        return "".join(parts)
    top = best[0]
    run = next(r for r in view.runs if r.state is top)
    metrics = ", ".join(f"{k}={number(v)}" for k, v in top.metrics.items() if k != "finished")
    config = [(k, escape(str(display(v)))) for k, v in top.config.items()]
    heading = f"best by {key}" + (" (the first objective; the Pareto front below weighs "
                                  "them all)" if len(view.objectives) > 1 else "")
    broken = [c.text() for c in constraints if not c.holds(top.metrics)]
    if broken:
        heading = f"no run keeps the constraints; best by {key}, infeasible: " + ", ".join(
            broken)
    elif constraints:
        heading += " among the runs that keep " + ", ".join(c.text() for c in constraints)
    parts.append(f'<h3>{escape(heading)}: trial {top.trial}, run <code>{escape(top.run_id)}'
                 f'</code></h3><p class="best-metrics">{escape(metrics)}</p>')
    parts.append(_dl(config))
    parts.append('<p>rerun it (output to a new folder):</p><div class="cmd"><pre id="rerun">'
                 f'{escape(rerun_command(view, run))}</pre><button type="button" '
                 'data-copy="rerun">copy</button></div>')
    columns, rows, numeric = best_rows(view, TOP_RUNS)
    parts.append(f"<h3>{len(rows)} best runs</h3>" + _table(columns, rows, numeric, "top"))
    return "".join(parts)


def failures(view: SearchView) -> str:
    """The failures section's inner HTML."""
    failed = [r for r in view.runs if r.state.status == "failed"]
    if not failed:
        return "<p>No run failed.</p>"
    reasons = failure_groups(r.state.reason or "unknown" for r in failed)
    parts = [f"<p>{len(failed)} failed runs.</p><ul class=\"reasons\">"
             + "".join(f"<li>{n} &times; {escape(k)}</li>" for k, n in reasons)
             + "</ul>"]
    rows = []
    for k, run in enumerate(failed):
        state = run.state
        config = " ".join(f"{key}={display(v)}" for key, v in state.config.items())
        tail = tail_lines(run.run_dir / STDERR_FILE, STDERR_LINES) \
            if k < MAX_STDERR_SHOWN else []
        stderr = f"<pre>{escape(chr(10).join(tail))}</pre>" if tail else ""
        rows.append(f'<tr class="failure" data-run="{escape(state.run_id)}"><td>{state.trial}'
                    f"</td><td><code>{escape(state.run_id)}</code></td><td>{state.attempts}"
                    f"</td><td>{escape(state.reason or 'unknown')}</td><td>"
                    f"<code>{escape(config)}</code>{stderr}</td></tr>")
    if len(failed) > MAX_STDERR_SHOWN:
        parts.append(f"<p>stderr is shown for the first {MAX_STDERR_SHOWN}; each run's is in "
                     f"its runs/&lt;id&gt;/{STDERR_FILE}.</p>")
    parts.append('<table class="failures"><thead><tr><th>trial</th><th>run</th>'
                 "<th>attempts</th><th>reason</th><th>configuration, last lines of stderr"
                 "</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    return "".join(parts)
