"""The report as one self-contained HTML file that opens from disk with no network.

The text sections, the data, plotly.js and our script are all inline.

``assets/page.html`` is the frame; its markers ``@@TITLE@@``, ``@@STYLE@@``,
``@@SUMMARY@@``, ``@@FAILURES@@``, ``@@PARETO_HIDDEN@@``, ``@@DATA@@``, ``@@LIVE@@``,
``@@PLOTLY@@`` and ``@@SCRIPT@@`` are replaced once each. ``@@LIVE@@`` is empty in the static
report; a served one (:mod:`.live`) puts there, as JSON, where and how often the page asks
for newer data. plotly.js is the minified bundle the ``plotly``
package ships (``plotly/package_data/plotly.min.js``), read without importing plotly. The
data is JSON in a ``<script type="application/json">``, every ``<`` written as ``\\u003c``
so no text in it can end the element.
"""

from __future__ import annotations

import importlib.util
import json
from html import escape
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError

ASSETS = Path(__file__).with_name("assets")


def plotly_js() -> str:
    """The minified plotly.js of the installed ``plotly`` package."""
    spec = importlib.util.find_spec("plotly")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise UsageError("the plotly package is not installed (the report inlines its "
                     "plotly.js); install it: pip install plotly")


def _data_json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render(title: str, summary_html: str, failures_html: str, data: dict[str, Any],
           live: dict[str, Any] | None = None) -> str:
    """The whole page; ``live``: the served page's polling (``version``, ``data``: the
    data's URL, ``every_ms``), None for the static report."""
    page = (ASSETS / "page.html").read_text(encoding="utf-8")
    parts = {
        "@@TITLE@@": escape(title),
        "@@STYLE@@": (ASSETS / "report.css").read_text(encoding="utf-8"),
        "@@SUMMARY@@": summary_html,
        "@@FAILURES@@": failures_html,
        "@@PARETO_HIDDEN@@": "" if data["pareto"] is not None else " hidden",
        "@@LINEAGE_HIDDEN@@": "" if data["lineage"] is not None else " hidden",
        "@@DATA@@": _data_json(data),
        "@@LIVE@@": "" if live is None else (
            '<script type="application/json" id="hpsearch-live">'
            f"{_data_json(live)}</script>"),
        "@@PLOTLY@@": plotly_js(),
        "@@SCRIPT@@": (ASSETS / "report.js").read_text(encoding="utf-8"),
    }
    pieces = page.split("@@")
    return "".join(parts.get(f"@@{piece}@@", piece) if k % 2 else piece
                   for k, piece in enumerate(pieces))
