"""The ``hpsearch`` command line: run a search (hypnettorch's flags), or collect/status/cancel.

``hpsearch --grid_module=M [flags]`` runs a search; ``hpsearch collect|status|cancel OUT_DIR``
and ``hpsearch wrap`` act on one. Every bad input ends in one line ``hpsearch: error: ...``
and exit status 2, before anything is written.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from hpsearch.backends.base import BackendError
from hpsearch.errors import UsageError
from hpsearch.options import SearchOptions

DEFAULT_OUT_DIR = "./out/hyperparam_search"


def _fail(message: str) -> None:
    raise UsageError(message)


def _check_range(name: str, value: float | None, low: float, high: float | None = None,
                 low_open: bool = False) -> None:
    if value is None:
        return
    too_low = value <= low if low_open else value < low
    if too_low or (high is not None and value > high):
        bound = f"in ({low}, {high}]" if low_open and high is not None else \
            f"> {low}" if low_open else f">= {low}" if high is None else f"in [{low}, {high}]"
        _fail(f"--{name}={value} is out of range; it must be {bound}")


def build_options(params: dict[str, Any]) -> SearchOptions:
    """Validate flag values and resolve paths; raises UsageError naming the flag."""
    _check_range("num_jobs", params["num_jobs"], 1)
    _check_range("retries", params["retries"], 0)
    _check_range("max_failures", params["max_failures"], 1)
    _check_range("timeout", params["timeout"], 0, low_open=True)
    _check_range("allowed_load", params["allowed_load"], 0, 1, low_open=True)
    _check_range("allowed_memory", params["allowed_memory"], 0, 1, low_open=True)
    _check_range("sim_startup_time", params["sim_startup_time"], 0)
    _check_range("max_num_jobs_per_gpu", params["max_num_jobs_per_gpu"], 1)
    _check_range("num_hours", params["num_hours"], 0, low_open=True)
    if params["num_searches"] != -1 and params["num_searches"] < 1:
        _fail(f"--num_searches={params['num_searches']} is out of range; give -1 (all) or "
              "a count >= 1")
    if params["dont_generate_full_grid"] and params["num_searches"] == -1:
        _fail("--dont_generate_full_grid needs --num_searches=N (how many random picks)")
    run_cwd = Path(params["run_cwd"]).resolve()
    if not run_cwd.is_dir():
        _fail(f"--run_cwd={params['run_cwd']} is not a directory; pass the sim's folder")
    python = params["python"] or sys.executable
    if not (os.path.isfile(python) and os.access(python, os.X_OK)) and not shutil.which(python):
        _fail(f"--python={python} is not an executable; pass a path to a Python interpreter")
    template = params.get("job_template")
    return SearchOptions(
        out_dir=Path(params["out_dir"]).resolve(), run_cwd=run_cwd, python=python,
        num_searches=params["num_searches"],
        dont_generate_full_grid=params["dont_generate_full_grid"],
        deterministic_search=params["deterministic_search"],
        random_seed=params["random_seed"], num_jobs=params["num_jobs"],
        timeout=params["timeout"], retries=params["retries"],
        max_failures=params["max_failures"], dry_run=params["dry_run"],
        visible_gpus=params["visible_gpus"], allowed_load=params["allowed_load"],
        allowed_memory=params["allowed_memory"],
        sim_startup_time=params["sim_startup_time"],
        max_num_jobs_per_gpu=params["max_num_jobs_per_gpu"],
        gpu_memory_per_run=params["gpu_memory_per_run"],
        run_cluster=params["run_cluster"], scheduler=params["scheduler"],
        num_hours=params["num_hours"],
        job_template=Path(template).resolve() if template else None,
        cancel_on_interrupt=params["cancel_on_interrupt"],
        slurm_mem=params["slurm_mem"], slurm_gres=params["slurm_gres"],
        slurm_partition=params["slurm_partition"], slurm_qos=params["slurm_qos"],
        slurm_constraint=params["slurm_constraint"],
        sbatch_options=tuple(params["sbatch_option"]), resources=params["resources"],
        lsf_queue=params["lsf_queue"], lsf_gpu=params["lsf_gpu"],
        bsub_options=tuple(params["bsub_option"]))


# -- flags ----------------------------------------------------------------------------
def _search_flags(func: Any) -> Any:
    """hypnettorch's flags (same names and defaults), then ours."""
    flags = [
        click.option("--grid_module", help="Grid module: a dotted name importable from the "
                     "current directory or --run_cwd, or a path to a .py file "
                     "(hypnettorch's hpsearch_config_template format)."),
        click.option("--grid_config", type=click.Path(dir_okay=False), default=None,
                     help="Pickle file with 'grid' and/or 'conditions' overriding the "
                     "module's."),
        click.option("--out_dir", default=DEFAULT_OUT_DIR, show_default=True,
                     help="The search directory (journal, results CSV, runs/). Running the "
                     "same command again with the same --out_dir resumes the search."),
        click.option("--force_out_dir", is_flag=True, help="Accepted for hypnettorch "
                     "compatibility: --out_dir is always the search directory itself."),
        click.option("--dont_force_new_dir", is_flag=True, help="Accepted for hypnettorch "
                     "compatibility: an existing search directory is always resumed."),
        click.option("--run_cwd", default=".", show_default=True,
                     help="Working directory of the runs (where _SCRIPT_NAME lives)."),
        click.option("--num_searches", type=int, default=-1, show_default=True,
                     help="Run at most N configurations (-1: all)."),
        click.option("--dont_generate_full_grid", is_flag=True,
                     help="Draw --num_searches random grid points instead of walking the "
                     "whole grid."),
        click.option("--deterministic_search", is_flag=True,
                     help="Run configurations in grid order (default: seeded random order)."),
        click.option("--random_seed", type=int, default=42, show_default=True,
                     help="Seed of the search order and of random picks."),
        click.option("--visible_gpus", default="", show_default=True,
                     help="Comma-separated GPU indices to use; empty: all; -1: no GPU, "
                     "run on --num_jobs CPU slots."),
        click.option("--allowed_load", type=float, default=0.5, show_default=True,
                     help="A GPU takes a run only while its (smoothed) load is at most this."),
        click.option("--allowed_memory", type=float, default=0.5, show_default=True,
                     help="A GPU takes a run only while its used+reserved memory share "
                     "stays at most this."),
        click.option("--sim_startup_time", type=float, default=60, show_default=True,
                     help="Seconds a GPU waits after a launch before taking another run "
                     "(lifted early once the run's memory is visible)."),
        click.option("--max_num_jobs_per_gpu", type=int, default=1, show_default=True,
                     help="Most runs of this search per GPU at once."),
        click.option("--gpu_memory_per_run", default=None,
                     help="GPU memory one run needs, e.g. 4GiB or 4096MiB (default: "
                     "learned from earlier runs)."),
        click.option("--run_cluster", is_flag=True,
                     help="Submit runs to a cluster scheduler (see --scheduler)."),
        click.option("--scheduler", type=click.Choice(["lsf", "slurm"]), default="lsf",
                     show_default=True, help="The cluster's scheduler."),
        click.option("--num_jobs", type=int, default=None,
                     help="Most runs at once: cluster jobs in flight (default 8), CPU slots "
                     "locally (default 1), a total cap in GPU mode (default none)."),
        click.option("--num_hours", type=float, default=24, show_default=True,
                     help="Time limit of each cluster job, in hours."),
        click.option("--resources", default='"rusage[mem=8000, ngpus_excl_p=1]"',
                     show_default=True, help="LSF: bsub -R resource requirement."),
        click.option("--slurm_mem", default="8G", show_default=True,
                     help="Slurm: sbatch --mem (empty: omit)."),
        click.option("--slurm_gres", default="gpu:1", show_default=True,
                     help="Slurm: sbatch --gres (empty: omit)."),
        click.option("--slurm_partition", default="", help="Slurm: sbatch --partition."),
        click.option("--slurm_qos", default="", help="Slurm: sbatch --qos."),
        click.option("--slurm_constraint", default="", help="Slurm: sbatch --constraint."),
        click.option("--sbatch_option", multiple=True, metavar="KEY=VALUE",
                     help="Slurm: any other sbatch option, e.g. --sbatch_option=account=lab "
                     "(repeatable)."),
        click.option("--lsf_queue", default="", help="LSF: bsub -q queue."),
        click.option("--lsf_gpu", default="", help="LSF: bsub -gpu requirement, e.g. "
                     "'num=1:mode=exclusive_process'."),
        click.option("--bsub_option", multiple=True, metavar="KEY=VALUE",
                     help="LSF: any other bsub option, e.g. --bsub_option=P=myproject "
                     "(repeatable)."),
        click.option("--job_template", type=click.Path(dir_okay=False), default=None,
                     help="Your own jinja2 job-script template for the cluster backend."),
        click.option("--cancel_on_interrupt", is_flag=True,
                     help="Cluster: Ctrl-C/SIGTERM on the driver also cancels the queued "
                     "and running jobs (default: leave them; a restart reattaches)."),
        click.option("--timeout", type=float, default=None,
                     help="Seconds a local run may take before it is stopped and failed."),
        click.option("--retries", type=int, default=0, show_default=True,
                     help="Run a failed run again up to N more times."),
        click.option("--max_failures", type=int, default=None,
                     help="Stop the search once N runs have failed for good."),
        click.option("--python", default=None,
                     help="Interpreter for the runs (default: the one running hpsearch)."),
        click.option("--dry_run", is_flag=True,
                     help="Print each run's command (or job script), write nothing."),
    ]
    for flag in reversed(flags):
        func = flag(func)
    return func


@click.group(invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@_search_flags
@click.pass_context
def main_group(ctx: click.Context, **params: Any) -> None:
    """Run a hyperparameter search over a grid module, or act on a search directory.

    \b
    hpsearch --grid_module=sims.quadratic.hpsearch_config --run_cwd=sims/quadratic --out_dir=out/q
    hpsearch status out/q      # counts and best runs, also while a driver runs
    hpsearch collect out/q     # rebuild search_results.csv from the run directories
    hpsearch cancel out/q      # stop the driver and cancel every run of the search
    """
    if ctx.invoked_subcommand is not None:
        return
    if not params["grid_module"]:
        raise UsageError("--grid_module is required; pass e.g. "
                         "--grid_module=sims.quadratic.hpsearch_config")
    from hpsearch.launch import run_search

    ctx.exit(run_search(params["grid_module"], build_options(params),
                        Path(params["grid_config"]) if params["grid_config"] else None))


@main_group.command("collect")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--grid_module", default=None,
              help="Grid module, for a directory without search.json (e.g. hypnettorch's).")
def collect_command(out_dir: str, grid_module: str | None) -> None:
    """Rebuild OUT_DIR/search_results.csv from the run directories and the journal.

    Works for a search whose driver died and for a directory written by hypnettorch.
    """
    from hpsearch.collect import collect

    collect(Path(out_dir).resolve(), grid_module)


@main_group.command("status")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--top", type=int, default=5, show_default=True, help="How many best runs.")
def status_command(out_dir: str, top: int) -> None:
    """Print run counts by state and the best runs of the search in OUT_DIR."""
    from hpsearch.collect import print_status

    print_status(Path(out_dir).resolve(), top)


@main_group.command("cancel")
@click.argument("out_dir", type=click.Path(file_okay=False))
def cancel_command(out_dir: str) -> None:
    """Stop the search's driver (if running here) and cancel every run or job it started."""
    from hpsearch.collect import cancel_search

    cancel_search(Path(out_dir).resolve())


@main_group.command("wrap", context_settings={"ignore_unknown_options": True,
                                              "allow_extra_args": True})
@click.option("--driver_hours", type=float, default=120, show_default=True,
              help="Time limit of the driver's own job, in hours.")
@click.option("--driver_mem", default="8G", show_default=True,
              help="Memory of the driver's own job: Slurm --mem, LSF -R rusage[mem=...] "
              "(8G becomes 8GB there).")
@click.argument("search_args", nargs=-1, type=click.UNPROCESSED)
def wrap_command(driver_hours: float, driver_mem: str, search_args: tuple[str, ...]) -> None:
    """Print a batch job script that runs this search's driver as a long job.

    \b
    hpsearch wrap --driver_hours=48 --grid_module=sims.my_sim.hpsearch_config \\
        --run_cwd=sims/my_sim --out_dir=out/s --run_cluster --scheduler=slurm > search.sbatch
    sbatch search.sbatch

    SEARCH_ARGS are the flags of the search, checked now as the driver will read them.
    """
    import dataclasses

    from hpsearch.backends import driver_script
    from hpsearch.spec import load_spec

    with main_group.make_context("hpsearch", list(search_args), resilient_parsing=False) as sub:
        params = dict(sub.params)
    if not params["grid_module"]:
        raise UsageError("hpsearch wrap needs the search's flags, e.g. --grid_module=... "
                         "--run_cluster --scheduler=slurm")
    options = build_options(params)
    if not options.run_cluster:
        raise UsageError("hpsearch wrap runs the driver as a batch job that submits the runs: "
                         "add --run_cluster --scheduler=slurm|lsf")
    load_spec(params["grid_module"], options.run_cwd,
              Path(params["grid_config"]) if params["grid_config"] else None)
    _check_range("driver_hours", driver_hours, 0, low_open=True)
    lsf_mem = driver_mem + "B" if driver_mem[-1:].upper() in "KMGT" and driver_mem[:-1].isdigit() \
        else driver_mem  # LSF spells units KB, MB, GB, TB
    driver_options = dataclasses.replace(options, num_hours=driver_hours, slurm_mem=driver_mem,
                                         resources=f"rusage[mem={lsf_mem}]")
    argv = [sys.executable, "-m", "hpsearch", *search_args]
    click.echo(driver_script(driver_options, argv, Path.cwd()), nl=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point: click in non-standalone mode so every error is one line, exit 2."""
    try:
        code = main_group.main(args=argv, prog_name="hpsearch", standalone_mode=False)
    except UsageError as exc:
        print(f"hpsearch: error: {exc}", file=sys.stderr)
        return 2
    except BackendError as exc:  # the scheduler failed mid-search; the journal is intact
        print(f"hpsearch: error: {exc}; run the same command again to resume",
              file=sys.stderr)
        return 1
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)
        return 2
    except click.UsageError as exc:
        print(f"hpsearch: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):  # Ctrl-C before the driver took over
        return 130
    return code if isinstance(code, int) else 0
