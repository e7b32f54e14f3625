"""The search directory: what a search leaves on disk besides its runs.

``<out_dir>/search.json`` describes the search so that ``collect`` and ``status`` can read
the directory without the grid module::

    {"grid_module": "sims.quadratic.hpsearch_config", "module_file": "/abs/.../config.py",
     "script_name": "quadratic.py", "summary_filename": "performance_overview.txt",
     "summary_keywords": ["loss", "finished"], "performance_key": "loss",
     "performance_sort_asc": true, "out_arg": "out_dir", "config_keys": ["x", "y"],
     "custom_parser": false, "size_hint": 96, "run_cwd": "/abs/sims/quadratic",
     "backend": "local"}
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hpsearch.journal import JOURNAL_FILE
from hpsearch.results import TableLayout
from hpsearch.runfiles import write_atomic
from hpsearch.spec import SearchSpec

SEARCH_FILE = "search.json"


def config_keys(spec: SearchSpec) -> list[str]:
    """Grid keys, then keys only conditions set, each once."""
    keys = list(spec.grid)
    for _match, replace in spec.conditions:
        keys.extend(k for k in replace if k not in keys)
    return keys


def layout_of(meta: dict[str, Any]) -> TableLayout:
    return TableLayout(list(meta["config_keys"]), list(meta["summary_keywords"]),
                       meta["performance_key"], bool(meta["performance_sort_asc"]))


def describe(spec: SearchSpec, grid_module: str, run_cwd: Path, size_hint: int,
             backend: str) -> dict[str, Any]:
    return {"grid_module": grid_module, "backend": backend,
            "module_file": str(spec.module_file) if spec.module_file else None,
            "script_name": spec.script_name, "summary_filename": spec.summary_filename,
            "summary_keywords": spec.summary_keywords,
            "performance_key": spec.performance_key,
            "performance_sort_asc": spec.performance_sort_asc, "out_arg": spec.out_arg,
            "config_keys": config_keys(spec), "custom_parser": spec.summary_parser is not None,
            "size_hint": size_hint, "run_cwd": str(run_cwd)}


def write_description(out_dir: Path, meta: dict[str, Any], spec: SearchSpec) -> None:
    """Record the search and keep a copy of its grid module, as hypnettorch does."""
    write_atomic(out_dir / SEARCH_FILE, json.dumps(meta, indent=1) + "\n")
    if spec.module_file is not None and spec.module_file.is_file():
        shutil.copyfile(spec.module_file, out_dir / spec.module_file.name)


def read_description(out_dir: Path) -> dict[str, Any] | None:
    try:
        with open(out_dir / SEARCH_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_search_dir(out_dir: Path) -> bool:
    return (out_dir / SEARCH_FILE).exists() or (out_dir / JOURNAL_FILE).exists()
