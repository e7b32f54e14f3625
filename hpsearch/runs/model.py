"""From a configuration to a Run: a stable id, its directory, and its argv list.

The argv is ``[python, *interpreter flags, script, *leading words, --<out_arg>=<sim out dir>,
*arguments]`` (see :class:`hpsearch.spec.gridmodule.ScriptCommand` and
:func:`hpsearch.spec.values.render_args`); the sim's output directory is
``<search>/runs/<run_id>/out``. With a config template the parameters it holds leave the arguments
and ``--<config_arg>=<run dir>/<template name>`` ends them
(:meth:`hpsearch.spec.configfile.ConfigFile.argv_words`).

A grid search names a run by a hash of its configuration's canonical text, so equal
configurations (``1 == 1.0``) share one run, in every process and after a changed grid
(``[0, 1]`` -> ``[0.0, 1.0]`` re-runs nothing). A sampled search names it by its trial
number and configuration (``000007-3f2a9c0d``): each trial is a run of its own, even when
a sampler proposes a configuration twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpsearch.backends.base import Run
from hpsearch.runs.files import RUNS_DIR, SIM_OUT_DIR
from hpsearch.spec.gridmodule import ScriptCommand
from hpsearch.spec.values import config_hash, render_args


def run_id_of(config: dict[str, Any], trial: int | None = None) -> str:
    """12 hex digits of the configuration's hash, or ``<trial>-<8 hex>`` for a sampled trial."""
    digest = config_hash(config)
    return digest[:12] if trial is None else f"{trial:06d}-{digest[:8]}"


def make_run(run_id: str, trial: int, config: dict[str, Any], args: list[str] | None, *,
             out_dir: Path, run_cwd: Path, python: str, command: ScriptCommand,
             out_arg: str) -> Run:
    """The Run of ``config``; ``args`` (if given) are its argument words, else rendered."""
    run_dir = out_dir / RUNS_DIR / run_id
    sim_out_dir = run_dir / SIM_OUT_DIR
    words = render_args(config) if args is None else list(args)
    if command.config_file is not None:
        words = command.config_file.argv_words(words, run_dir)
    argv = (*command.argv_prefix(python), f"--{out_arg}={sim_out_dir}", *words)
    return Run(run_id=run_id, trial=trial, config=config, argv=argv, cwd=run_cwd,
               run_dir=run_dir, sim_out_dir=sim_out_dir)
