"""From a configuration to a Run: a stable id, its directory, and its argv list.

Arguments are rendered as hypnettorch renders them, minus its shell::

    {"lr": 1e-4, "use_bn": True, "dropout": False, "name": '"a b"'}
    -> ["--lr=0.0001", "--use_bn", "--name=a b"]

``--name=str(value)``; True is the bare flag, False omits it; a string wholly wrapped in one
matching pair of ``"`` or ``'`` loses that pair (hypnettorch users quote strings so they
survive its shell; we never use one). The sim's output directory comes first:
``--out_dir=<search>/runs/<run_id>/out``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hpsearch.backends.base import Run
from hpsearch.runfiles import RUNS_DIR, SIM_OUT_DIR


def run_id_of(config: dict[str, Any]) -> str:
    """12 hex digits of a hash of the configuration, the same in every process."""
    canonical = json.dumps(config, sort_keys=True, default=repr)
    return hashlib.sha1(canonical.encode()).hexdigest()[:12]


def strip_wrapping_quotes(text: str) -> str:
    """``'"a b"'`` -> ``'a b'``: one matching pair of quotes around the whole text goes.

    hypnettorch users quote values so they survive its shell; we use none.
    """
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def render_value(value: Any) -> str:
    """The text after ``--name=`` for one non-boolean value."""
    return strip_wrapping_quotes(value) if isinstance(value, str) else str(value)


def render_args(config: dict[str, Any]) -> list[str]:
    args = []
    for name, value in config.items():
        if isinstance(value, bool):
            if value:
                args.append(f"--{name}")
        else:
            args.append(f"--{name}={render_value(value)}")
    return args


def make_run(index: int, config: dict[str, Any], *, out_dir: Path, run_cwd: Path,
             python: str, script_name: str, out_arg: str) -> Run:
    run_id = run_id_of(config)
    run_dir = out_dir / RUNS_DIR / run_id
    sim_out_dir = run_dir / SIM_OUT_DIR
    argv = (python, script_name, f"--{out_arg}={sim_out_dir}", *render_args(config))
    return Run(run_id=run_id, index=index, config=config, argv=argv, cwd=run_cwd,
               run_dir=run_dir, sim_out_dir=sim_out_dir)
