"""The run model: a :class:`Run` with its :class:`Resources`, and how a configuration becomes one.

A :class:`Run` is one attempt of one configuration, ready to execute; a configuration becomes
one with a stable id, its directory and its argv.

The argv is ``[python, *interpreter flags, script, *leading words, --<out_arg>=<sim out dir>,
*arguments]`` (see :class:`hpsearch.spec.invocation.ScriptCommand` and
:func:`hpsearch.spec.values.render_args`); the sim's output directory is
``<search>/runs/<run_id>/out``. With a config template the parameters it holds leave the arguments
and ``--<config_arg>=<run dir>/<template name>`` ends them
(:meth:`hpsearch.spec.configfile.ConfigFile.argv_words`). A Hydra app's argv is ``[python, script,
*overrides, hydra.run.dir=<sim out dir>, hydra.job.chdir=False]`` (:mod:`hpsearch.spec.hydra`).

A grid search names a run by a hash of its configuration's canonical text, so equal
configurations (``1 == 1.0``) share one run, in every process and after a changed grid
(``[0, 1]`` -> ``[0.0, 1.0]`` re-runs nothing). A sampled search names it by its trial
number and configuration (``000007-3f2a9c0d``): each trial is a run of its own, even when
a sampler proposes a configuration twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.runs.files import RUNS_DIR, SIM_OUT_DIR
from hpsearch.spec.invocation import ScriptCommand
from hpsearch.spec.values import config_hash


@dataclass(frozen=True)
class Resources:
    """What one run needs of the machine or the job that runs it.

    ``gpus``: how many GPUs (0: none; a local run of N takes N GPUs that admit it at once).
    ``cpus``: CPUs (cores; a local run of K takes K CPU slots).
    ``memory``: bytes of memory its job asks for (None: the scheduler's default, or no limit
    on a local run). ``nodes``: machines its job spans. ``time_limit``: seconds its job may
    run (None: no limit). ``gpu_memory_mib``: MiB of GPU memory it is expected to take
    (``--gpu_memory_per_run``; None: learned from the runs seen so far). ``launcher``: how
    its command starts on its nodes (``torchrun``, ``srun``, ``mpirun``; None: as it is; see
    :mod:`hpsearch.runs.launchers`). ``gpus`` and ``cpus`` are per node.

    The defaults are a local GPU run's; :class:`hpsearch.engine.placement.ResourcePlan`
    fills each run's from the search's flags and its ``resources:`` rules.
    """

    gpus: int = 1
    cpus: int = 1
    memory: int | None = None
    nodes: int = 1
    time_limit: float | None = None
    gpu_memory_mib: int | None = None
    launcher: str | None = None


@dataclass(frozen=True)
class Run:
    """One attempt of one configuration, ready to execute.

    ``argv`` is the complete command (interpreter, script, arguments) as a list: it is
    never joined into a shell string. ``cwd`` is the directory it runs in (``--run_cwd``).
    ``run_dir`` is the run's own record directory (logs, command, exit code); the sim's
    output directory, passed as ``--<_OUT_ARG>``, is ``sim_out_dir``. ``launch`` is the key
    of the launch that starts this attempt (the wrapper writes it into the run's files);
    ``env`` holds environment variables the run gets on top of the backend's.
    ``resources``: what it needs (backends read it here, not from the search's options).
    """

    run_id: str
    trial: int
    config: Mapping[str, Any]
    argv: tuple[str, ...]
    cwd: Path
    run_dir: Path
    sim_out_dir: Path
    attempt: int = 1
    launch: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = Resources()


def run_id_of(config: dict[str, Any], trial: int | None = None) -> str:
    """12 hex digits of the configuration's hash, or ``<trial>-<8 hex>`` for a sampled trial."""
    digest = config_hash(config)
    return digest[:12] if trial is None else f"{trial:06d}-{digest[:8]}"


def run_dirs(out_dir: Path, run_id: str) -> tuple[Path, Path]:
    """(run directory, output directory) of run ``run_id`` of the search in ``out_dir``:
    ``<out_dir>/runs/<run_id>`` and its ``out/``."""
    run_dir = out_dir / RUNS_DIR / run_id
    return run_dir, run_dir / SIM_OUT_DIR


def make_run(run_id: str, trial: int, config: dict[str, Any], args: list[str] | None, *,
             out_dir: Path, run_cwd: Path, python: str, command: ScriptCommand,
             out_arg: str, resources: Resources) -> Run:
    """The Run of ``config``, needing ``resources``; ``args`` (if given) are its argument
    words, else rendered."""
    run_dir, sim_out_dir = run_dirs(out_dir, run_id)
    words = command.render(config) if args is None else list(args)
    if command.hydra is not None:
        argv = (*command.argv_prefix(python), *words, *command.hydra.output_words(sim_out_dir))
        return Run(run_id=run_id, trial=trial, config=config, argv=argv, cwd=run_cwd,
                   run_dir=run_dir, sim_out_dir=sim_out_dir, resources=resources)
    if command.config_file is not None:
        words = command.config_file.argv_words(words, run_dir)
    argv = (*command.argv_prefix(python), f"--{out_arg}={sim_out_dir}", *words)
    return Run(run_id=run_id, trial=trial, config=config, argv=argv, cwd=run_cwd,
               run_dir=run_dir, sim_out_dir=sim_out_dir, resources=resources)
