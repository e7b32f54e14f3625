"""The ``hpsearch`` command line: run a search (hypnettorch's flags), or collect/status/cancel.

``hpsearch --grid_module=M [flags]`` runs a search; ``hpsearch collect|status|cancel OUT_DIR``
and ``hpsearch wrap`` act on one. Every bad input ends in one line ``hpsearch: error: ...``
and exit status 2, before anything is written.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from hpsearch.engine.options import SearchOptions
from hpsearch.errors import SearchError, UsageError
from hpsearch.service.limits import DEFAULT_MAX_REQUESTS, MAX_POINTS_AHEAD

DEFAULT_OUT_DIR = "./out/hyperparam_search"


def _fail(message: str) -> None:
    raise UsageError(message)


def _check_range(name: str, value: float | None, low: float, high: float | None = None,
                 low_open: bool = False) -> None:
    if value is None:
        return
    if not math.isfinite(value):
        _fail(f"--{name}={value} is not a finite number; give a number such as 1 or 0.5")
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
    _check_range("runs_per_job", params["runs_per_job"], 1)
    _check_range("continue_on_timeout", params["continue_on_timeout"], 0)
    _check_range("walltime_warning", params["walltime_warning"], 0)
    local_way = {"runs_per_job": " (local runs share GPUs through --max_num_jobs_per_gpu)",
                 "continue_on_timeout": " (local runs have no scheduler time limit)"}
    for name, instead in local_way.items():
        if params[name] and not params["run_cluster"]:
            _fail(f"--{name} is for cluster jobs: add --run_cluster --scheduler=slurm|lsf, "
                  f"or leave it out{instead}")
    _check_range("num_hours", params["num_hours"], 0, low_open=True)
    _check_range("fail_fast", params["fail_fast"], 0)
    _check_range("prune_grace", params["prune_grace"], 0)
    if params["num_searches"] != -1 and params["num_searches"] < 1:
        _fail(f"--num_searches={params['num_searches']} is out of range; give -1 (all) or "
              "a count >= 1")
    if params["dont_generate_full_grid"] and params["num_searches"] == -1:
        _fail("--dont_generate_full_grid needs --num_searches=N (how many random picks)")
    _check_gpu_flags(params)
    run_cwd = Path(params["run_cwd"]).resolve()
    if not run_cwd.is_dir():
        _fail(f"--run_cwd={params['run_cwd']} is not a directory; pass the sim's folder")
    python = params["python"] or sys.executable
    if not (os.path.isfile(python) and os.access(python, os.X_OK)) and not shutil.which(python):
        _fail(f"--python={python} is not an executable; pass a path to a Python interpreter")
    template = params.get("job_template")
    if template and not Path(template).is_file():
        _fail(f"--job_template={template} does not exist; pass an existing jinja2 file or "
              "leave it out to use the built-in one")
    return SearchOptions(
        out_dir=Path(params["out_dir"]).resolve(), run_cwd=run_cwd, python=python,
        num_searches=params["num_searches"],
        dont_generate_full_grid=params["dont_generate_full_grid"],
        deterministic_search=params["deterministic_search"],
        random_seed=params["random_seed"], num_jobs=params["num_jobs"],
        timeout=params["timeout"], retries=params["retries"],
        max_failures=params["max_failures"], fail_fast=params["fail_fast"],
        prune_grace=params["prune_grace"],
        rerun_failed=params["rerun_failed"], force_out_dir=params["force_out_dir"],
        dry_run=params["dry_run"],
        visible_gpus=params["visible_gpus"], allowed_load=params["allowed_load"],
        allowed_memory=params["allowed_memory"],
        sim_startup_time=params["sim_startup_time"],
        max_num_jobs_per_gpu=params["max_num_jobs_per_gpu"] or params["runs_per_job"] or 1,
        gpu_memory_per_run=params["gpu_memory_per_run"],
        run_cluster=params["run_cluster"], scheduler=params["scheduler"],
        num_hours=params["num_hours"],
        job_template=Path(template).resolve() if template else None,
        job_setup=job_setup_lines(params["job_setup"]),
        cancel_on_interrupt=params["cancel_on_interrupt"],
        slurm_mem=params["slurm_mem"], slurm_gres=params["slurm_gres"],
        slurm_partition=params["slurm_partition"], slurm_qos=params["slurm_qos"],
        slurm_constraint=params["slurm_constraint"],
        sbatch_options=tuple(params["sbatch_option"]), resources=params["resources"],
        lsf_queue=params["lsf_queue"], lsf_gpu=params["lsf_gpu"],
        bsub_options=tuple(params["bsub_option"]), runs_per_job=params["runs_per_job"],
        continue_on_timeout=params["continue_on_timeout"],
        walltime_warning=params["walltime_warning"])


def _check_gpu_flags(params: dict[str, Any]) -> None:
    """``--gpu_memory_per_run`` and ``--visible_gpus`` are checked also when no GPU backend
    runs (``--visible_gpus=-1``, ``--run_cluster``): a bad value is refused, never ignored."""
    from hpsearch.backends.gpus.admission import parse_mib, parse_visible_gpus

    try:
        parse_mib(params["gpu_memory_per_run"])
        parse_visible_gpus(params["visible_gpus"])
    except ValueError as exc:
        _fail(str(exc))


def job_setup_lines(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--job_setup`` values as job-script lines; ``@FILE`` stands for the file's lines."""
    lines: list[str] = []
    for value in values:
        if value.startswith("@"):
            try:
                text = Path(value[1:]).read_text()
            except OSError as exc:
                _fail(f"--job_setup={value}: cannot read {value[1:]} ({exc.strerror}); pass "
                      "@ and an existing file, or the line itself")
            lines += [ln for ln in text.splitlines() if ln.strip()]
        elif "\n" in value or "\0" in value:
            _fail(f"--job_setup={value!r} spans lines; give one --job_setup per line or "
                  "--job_setup=@file")
        else:
            lines.append(value)
    return tuple(lines)


def search_source(params: dict[str, Any], ctx: click.Context | None = None) -> Any:
    """The search the flags name (grid module or search file) with their overrides."""
    from hpsearch.engine.launch import SearchSource

    if bool(params["grid_module"]) == bool(params["search_file"]):
        raise UsageError("give either --grid_module=M (a hypnettorch grid module) or "
                         "--search_file=F (a YAML/JSON search), e.g. "
                         "--grid_module=sims.quadratic.hpsearch_config")
    explicit_seed = ctx is not None and ctx.get_parameter_source("random_seed") not in (
        None, click.core.ParameterSource.DEFAULT)
    return SearchSource(
        grid_module=params["grid_module"] or None,
        search_file=Path(params["search_file"]) if params["search_file"] else None,
        grid_config=Path(params["grid_config"]) if params["grid_config"] else None,
        algorithm=params["algorithm"],
        num_trials=params["num_searches"] if params["num_searches"] != -1 else None,
        seed=params["random_seed"] if explicit_seed else None,
        pruner=params["pruner"],
        script=params["script"] or None,
        config_template=Path(params["config_template"]).resolve()
        if params["config_template"] else None,
        config_arg=params["config_arg"] or None,
        allow_new_keys=True if params["allow_new_keys"] else None)


def with_file_settings(params: dict[str, Any], ctx: click.Context, source: Any
                       ) -> tuple[dict[str, Any], list[str]]:
    """``params`` with the backend settings the search file carries (hyper_opt's slurm:,
    hpogrid's max_concurrent) where no flag was given, and the lines that say so (shown once
    the search loaded). An ``--sbatch_option`` of the file is added unless the command line
    gives one of the same name."""
    if source.search_file is None:
        return params, []
    from hpsearch.spec.migrate import suggested_options

    backend = params["scheduler"] if params["run_cluster"] else "local"
    suggested, notes = suggested_options(source.search_file, backend)
    lines = [f"warning: {note}" for note in notes]
    params, applied = dict(params), []
    for name, value in suggested.items():
        if name == "sbatch_option":
            given = {_option_name(item) for item in params[name]}
            added = [item for item in value if _option_name(item) not in given]
            params[name] = (*added, *params[name])
            applied += [f"--sbatch_option={item}" for item in added]
        elif ctx.get_parameter_source(name) in (None, click.core.ParameterSource.DEFAULT):
            params[name] = value
            applied.append(f"--{name}={value}")
    if applied:
        lines.append(f"from {source.search_file.name}: {' '.join(applied)}")
    return params, lines


def _option_name(item: str) -> str:
    """``"--mem_per_cpu=2G"`` -> ``"mem-per-cpu"``: an sbatch option's name, as Slurm spells it."""
    return item.partition("=")[0].strip().lstrip("-").replace("_", "-")


# -- flags ----------------------------------------------------------------------------
def _search_flags(func: Any) -> Any:
    """hypnettorch's flags (same names and defaults), then ours."""
    flags = [
        click.option("--grid_module", help="Grid module: a dotted name importable from the "
                     "current directory or --run_cwd, or a path to a .py file "
                     "(hypnettorch's hpsearch_config_template format)."),
        click.option("--search_file", default=None,
                     help="A search file (YAML or JSON): parameters with distributions, "
                     "algorithm, objective; instead of --grid_module."),
        click.option("--script", default=None,
                     help="The command (or FILE.py:FUNCTION) every run executes, over the "
                     "search file's script (or _SCRIPT_NAME); hyper_opt files need it."),
        click.option("--config_template", type=click.Path(dir_okay=False), default=None,
                     help="A YAML/JSON model config each run gets a copy of, with the "
                     "parameters named like optimizer:learning_rate set in it."),
        click.option("--config_arg", default=None,
                     help="The flag that passes the patched config (default: config, i.e. "
                     "--config=<run_dir>/<template name>)."),
        click.option("--allow_new_keys", is_flag=True,
                     help="Let parameters add key paths the config template lacks."),
        click.option("--algorithm", default=None,
                     help="grid | random | qmc | tpe | cmaes | gp | nsga2 | external; "
                     "overrides the grid module's _ALGORITHM or the search file's algorithm."),
        click.option("--pruner", default=None,
                     help="Early stopping: none | asha | hyperband | median; overrides the "
                     "grid module's _PRUNER or the search file's pruner (default: theirs, "
                     "else none)."),
        click.option("--prune_grace", type=float, default=60, show_default=True,
                     help="Seconds a pruned run has to stop after SIGTERM before it is "
                     "killed."),
        click.option("--grid_config", type=click.Path(dir_okay=False), default=None,
                     help="Pickle file with 'grid' and/or 'conditions' overriding the "
                     "module's."),
        click.option("--out_dir", default=DEFAULT_OUT_DIR, show_default=True,
                     help="The search directory (journal, results CSV, runs/). Running the "
                     "same command again with the same --out_dir resumes the search."),
        click.option("--force_out_dir", is_flag=True, help="Continue the search in --out_dir "
                     "even though its script, summary keywords, objective, algorithm or grid "
                     "module changed (otherwise refused)."),
        click.option("--dont_force_new_dir", is_flag=True, help="Accepted for hypnettorch "
                     "compatibility: an existing search directory is always resumed."),
        click.option("--run_cwd", default=".", show_default=True,
                     help="Working directory of the runs (where _SCRIPT_NAME lives)."),
        click.option("--num_searches", "--num_trials", "num_searches", type=int, default=-1,
                     show_default=True,
                     help="Run at most N configurations (-1: all); the trial count of a "
                     "sampling algorithm (overrides the search file's num_trials)."),
        click.option("--dont_generate_full_grid", is_flag=True,
                     help="Draw --num_searches random grid points (seeded by --random_seed) "
                     "instead of walking the whole grid."),
        click.option("--deterministic_search", is_flag=True,
                     help="Run configurations in grid order (default: seeded random order)."),
        click.option("--random_seed", type=int, default=42, show_default=True,
                     help="Seed of the search order and of random picks; given explicitly, it "
                     "overrides a search file's seed."),
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
        click.option("--max_num_jobs_per_gpu", type=int, default=None,
                     help="Most runs of this search per GPU at once (default 1; in a packed "
                     "job, --runs_per_job)."),
        click.option("--gpu_memory_per_run", default=None,
                     help="GPU memory one run needs, e.g. 4GiB, 4096MiB or 4096 (MiB) "
                     "(default: learned from earlier runs)."),
        click.option("--run_cluster", is_flag=True,
                     help="Submit runs to a cluster scheduler (see --scheduler)."),
        click.option("--scheduler", type=click.Choice(["lsf", "slurm"]), default="lsf",
                     show_default=True, help="The cluster's scheduler."),
        click.option("--num_jobs", type=int, default=None,
                     help="Most runs at once: cluster jobs in flight (default 8), CPU slots "
                     "locally (default: one per CPU this process may use), a total cap in GPU "
                     "mode (default none)."),
        click.option("--num_hours", type=float, default=24, show_default=True,
                     help="Time limit of each cluster job, in hours (fractions allowed)."),
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
        click.option("--job_setup", multiple=True, metavar="LINE",
                     help="Cluster: a line the job script runs before the command, e.g. "
                     "'module load cuda' or 'conda activate env' (repeatable; @FILE: the file's "
                     "lines); the driver's own job (hpsearch wrap) runs them too."),
        click.option("--runs_per_job", type=int, default=None,
                     help="Cluster: pack up to N runs into each job; a worker in the job "
                     "runs them N at once on the job's GPUs (the GPU admission flags apply) "
                     "and takes the next run as one ends. --num_jobs then counts jobs."),
        click.option("--continue_on_timeout", type=int, default=0, show_default=True,
                     help="Cluster: run a run that hit its job's time limit again, up to K "
                     "times, with HPSEARCH_RESUMED=1 (not counted as --retries)."),
        click.option("--walltime_warning", type=float, default=300, show_default=True,
                     help="Cluster: seconds before a job's time limit at which its runs get "
                     "SIGTERM to save their work (0: none; none when --num_hours is not "
                     "longer than twice this)."),
        click.option("--cancel_on_interrupt", is_flag=True,
                     help="Cluster: Ctrl-C/SIGTERM on the driver also cancels the queued "
                     "and running jobs (default: leave them; a restart reattaches)."),
        click.option("--timeout", type=float, default=None,
                     help="Seconds a local (or packed) run may take before it is stopped and "
                     "failed (finished, if its summary already said finished)."),
        click.option("--retries", type=int, default=0, show_default=True,
                     help="Run a failed run again up to N more times."),
        click.option("--max_failures", type=int, default=None,
                     help="Stop the search once N runs have failed for good."),
        click.option("--fail_fast", type=int, default=5, show_default=True,
                     help="Stop when the first N runs all failed with the same reason and "
                     "none finished (0: never)."),
        click.option("--rerun_failed", is_flag=True,
                     help="Run the search's failed runs again, with a fresh --retries "
                     "budget (what hpsearch retry does)."),
        click.option("--python", default=None,
                     help="Interpreter for the runs (default: the one running hpsearch); a "
                     "virtualenv's python works without activating it."),
        click.option("--dry_run", is_flag=True,
                     help="Print the command of each run that would run now (shell-quoted, one "
                     "per line) or each job script, and what its config template copy sets; "
                     "write nothing. On an existing search it leaves out what already ran; a "
                     "sampler prints only the proposals that need no results."),
    ]
    for flag in reversed(flags):
        func = flag(func)
    return func


@click.group(invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@_search_flags
@click.pass_context
def main_group(ctx: click.Context, **params: Any) -> None:
    """Run a hyperparameter search (a grid module or a search file), or act on one.

    \b
    hpsearch --grid_module=sims.quadratic.hpsearch_config --run_cwd=sims/quadratic --out_dir=out/q
    hpsearch --search_file=sims/logreg/search.yaml --run_cwd=sims/logreg --out_dir=out/tpe
    hpsearch status out/q      # counts and best runs, also while a driver runs
    hpsearch collect out/q     # rebuild search_results.csv from the run directories
    hpsearch retry out/q       # run the failed runs again (after fixing the sim)
    hpsearch cancel out/q      # stop the driver and cancel every run of the search
    hpsearch serve --search_file=search.yaml --out_dir=out/svc   # points over HTTP
    """
    if ctx.invoked_subcommand is not None:
        return
    source = search_source(params, ctx)
    from hpsearch.engine.launch import run_search

    params, notes = with_file_settings(params, ctx, source)
    ctx.exit(run_search(source, build_options(params), list((ctx.obj or {}).get("argv", [])),
                        notes))


@main_group.command("collect")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--grid_module", default=None,
              help="Grid module, for a directory without search.json (e.g. hypnettorch's).")
def collect_command(out_dir: str, grid_module: str | None) -> None:
    """Rebuild OUT_DIR/search_results.csv from the run directories and the journal.

    Works for a search whose driver died and for a directory written by hypnettorch.
    """
    from hpsearch.inspect.collect import collect

    collect(Path(out_dir).resolve(), grid_module)


@main_group.command("status")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--top", type=int, default=5, show_default=True, help="How many best runs.")
def status_command(out_dir: str, top: int) -> None:
    """Print run counts by state, the failed runs' reasons with their counts and the best
    runs of the search in OUT_DIR."""
    from hpsearch.inspect.collect import print_status

    print_status(Path(out_dir).resolve(), top)


@main_group.command("cancel")
@click.argument("out_dir", type=click.Path(file_okay=False))
def cancel_command(out_dir: str) -> None:
    """Stop the search's driver (if running here) and cancel every run or job it started."""
    from hpsearch.inspect.collect import cancel_search

    cancel_search(Path(out_dir).resolve())


@main_group.command("retry", context_settings={"ignore_unknown_options": True,
                                               "allow_extra_args": True})
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)
def retry_command(out_dir: str, extra_args: tuple[str, ...]) -> None:
    """Run the failed runs of the search in OUT_DIR again, with the command that ran it.

    EXTRA_ARGS are more search flags (e.g. --retries=2); they override the recorded ones.
    """
    from hpsearch.engine.searchdir import read_description

    meta = read_description(Path(out_dir).resolve())
    if meta is None or not isinstance(meta.get("command"), list):
        raise UsageError(f"{out_dir} holds no search that hpsearch can run again (no "
                         "search.json with its command); run the search's command with "
                         "--rerun_failed instead")
    os.chdir(meta.get("cwd") or ".")
    argv = [*meta["command"], *extra_args, "--rerun_failed"]
    raise click.exceptions.Exit(main(argv))


@main_group.command("wrap", context_settings={"ignore_unknown_options": True,
                                              "allow_extra_args": True})
@click.option("--driver_hours", type=float, default=120, show_default=True,
              help="Time limit of the driver's own job, in hours.")
@click.option("--driver_mem", default="8G", show_default=True,
              help="Memory of the driver's own job: Slurm --mem, LSF -R rusage[mem=...] "
              "(8G becomes 8GB there).")
@click.option("--driver_partition", default=None,
              help="Slurm partition (LSF queue) of the driver's own job (default: the "
              "runs' --slurm_partition / --lsf_queue).")
@click.argument("search_args", nargs=-1, type=click.UNPROCESSED)
def wrap_command(driver_hours: float, driver_mem: str, driver_partition: str | None,
                 search_args: tuple[str, ...]) -> None:
    """Print a batch job script that runs this search's driver as a long job.

    \b
    hpsearch wrap --driver_hours=48 --grid_module=sims.my_sim.hpsearch_config \\
        --run_cwd=sims/my_sim --out_dir=out/s --run_cluster --scheduler=slurm > search.sbatch
    sbatch search.sbatch

    SEARCH_ARGS are the flags of the search, checked now as the driver will read them.
    """
    from hpsearch.backends import driver_options, driver_script
    from hpsearch.engine.launch import load_search

    with main_group.make_context("hpsearch", list(search_args), resilient_parsing=False) as sub:
        params = dict(sub.params)
        source = search_source(params, sub)
        params, notes = with_file_settings(params, sub, source)
    options = build_options(params)
    if not options.run_cluster:
        raise UsageError("hpsearch wrap runs the driver as a batch job that submits the runs: "
                         "add --run_cluster --scheduler=slurm|lsf")
    load_search(source, options.run_cwd)
    for note in notes:
        print(f"hpsearch: {note}", file=sys.stderr)
    _check_range("driver_hours", driver_hours, 0, low_open=True)
    own = driver_options(options, driver_hours, driver_mem, driver_partition)
    argv = [sys.executable, "-m", "hpsearch", *search_args]
    click.echo(driver_script(own, argv, Path.cwd()), nl=False)


# -- looking at a search: report, export, seeds ------------------------------------------
_GRID_MODULE_HELP = "Grid module, for a directory without search.json (e.g. hypnettorch's)."


@main_group.command("report")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="The HTML file to write (default: OUT_DIR/report.html).")
@click.option("--terminal", is_flag=True, help="Print the best runs as a table that fits "
              "100 columns instead of writing HTML.")
@click.option("--top", type=int, default=10, show_default=True,
              help="How many best runs --terminal lists.")
@click.option("--grid_module", default=None, help=_GRID_MODULE_HELP)
def report_command(out_dir: str, output: str | None, terminal: bool, top: int,
                   grid_module: str | None) -> None:
    """Write one self-contained HTML report of the search in OUT_DIR (opens offline).

    Also for a running search, one whose driver died, and a hypnettorch directory.
    """
    from hpsearch.inspect.report import report_cli

    report_cli(Path(out_dir).resolve(), output and Path(output), terminal, top, grid_module)


@main_group.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "optuna"]), required=True,
              help="json: every run with its curve; csv: the results table with commas; "
              "optuna: an Optuna journal file (optuna-dashboard FILE opens it).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="The file to write (default: OUT_DIR/export.json, OUT_DIR/export.csv, "
              "OUT_DIR/optuna_journal.log).")
@click.option("--grid_module", default=None, help=_GRID_MODULE_HELP)
def export_command(out_dir: str, fmt: str, output: str | None, grid_module: str | None) -> None:
    """Export the runs of the search in OUT_DIR for other tools."""
    from hpsearch.inspect.export import export

    export(Path(out_dir).resolve(), fmt, output and Path(output), grid_module)


@main_group.command("seeds", context_settings={"ignore_unknown_options": True,
                                               "allow_extra_args": True})
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--top", type=int, default=1, show_default=True,
              help="How many of the best configurations to rerun.")
@click.option("--seeds", "num_seeds", type=int, default=10, show_default=True,
              help="Seeds per configuration (0 .. N-1).")
@click.option("--seed_arg", default="random_seed", show_default=True,
              help="The sim's flag for its random seed.")
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)
def seeds_command(out_dir: str, top: int, num_seeds: int, seed_arg: str,
                  extra_args: tuple[str, ...]) -> None:
    """Rerun the best configurations of OUT_DIR with several seeds, as the search
    OUT_DIR/seeds/ (same command and backend flags; run it again to resume), then write
    OUT_DIR/seeds/seed_summary.csv: mean and std of every metric per configuration.

    EXTRA_ARGS are more search flags (e.g. --num_jobs=4); they override the recorded ones.
    """
    from hpsearch.cli.seeds import run_seeds

    raise click.exceptions.Exit(run_seeds(main_group, main, Path(out_dir).resolve(), top,
                                          num_seeds, seed_arg, list(extra_args)))


#: flags that give a served search a backend of its own (it then also runs points itself)
SERVE_BACKEND_FLAGS = ("run_cluster", "num_jobs", "visible_gpus")


@main_group.command("serve")
@_search_flags
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (every request needs the token, on loopback too).")
@click.option("--port", type=int, default=8787, show_default=True,
              help="Port to listen on (0: any free one; the URL is the first line printed, "
              "'token: <token>' the second).")
@click.option("--token-file", "--token_file", "token_file", type=click.Path(dir_okay=False),
              default=None, help="File holding the token every request must send as "
              "'Authorization: Bearer <token>' (default: one generated into "
              "OUT_DIR/service.token, mode 0600, kept across restarts; printed at start).")
@click.option("--no_token", is_flag=True, default=False,
              help="Serve without a token, on loopback only: ANY user of this machine can "
              "then use the service as you.")
@click.option("--allow_commands", is_flag=True, default=False,
              help="Let requests made over HTTP carry commands and files to read (generator, "
              "script, config_template); without it such a request is refused (403).")
@click.option("--max_requests", type=int, default=DEFAULT_MAX_REQUESTS, show_default=True,
              help="Requests (searches) served at once, request 1 included; one more made "
              "over HTTP is refused (429) until one is done.")
@click.option("--lease", type=float, default=3600, show_default=True,
              help="Seconds a worker has to report a point it was handed; then the point "
              "is new again.")
@click.option("--max_points", type=int, default=None,
              help="Request 1's trial budget (default: the search's num_trials; a grid: all "
              "of it).")
@click.option("--num_points_per_generation", type=int, default=None,
              help="How many new points are kept ready for workers (default 10).")
@click.pass_context
def serve_command(ctx: click.Context, **params: Any) -> None:
    """Serve a search over HTTP: workers get points and report losses (iDDS's HPO API).

    \b
    hpsearch serve --search_file=search.yaml --out_dir=out/svc --port=8787
    auth="Authorization: Bearer $(cat out/svc/service.token)"
    curl -H "$auth" 'http://127.0.0.1:8787/requests/1/points?status=new&limit=1'
    curl -X PUT -H "$auth" -H 'Content-Type: application/json' -d '{"loss": 0.25}' \\
        http://127.0.0.1:8787/requests/1/points/0

    The service owns OUT_DIR as a search does (its lock, its journal): stopped or killed,
    the same command serves it again with every point and loss. Without backend flags
    (--run_cluster, --num_jobs, --visible_gpus) it runs nothing itself. OpenAPI: /docs.
    Every request needs the token (printed after the URL, kept in OUT_DIR/service.token);
    a request made over HTTP runs no command (--allow_commands) and writes nothing outside
    the search directory.
    """
    from hpsearch.service.requests import DEFAULT_POINTS_AHEAD, Budget
    from hpsearch.service.server import Access, serve

    if params["dry_run"]:
        raise UsageError("hpsearch serve has no --dry_run; run hpsearch --dry_run with the "
                         "same search to see its first points")
    _check_range("lease", params["lease"], 0, low_open=True)
    _check_range("max_points", params["max_points"], 1)
    _check_range("num_points_per_generation", params["num_points_per_generation"], 1,
                 MAX_POINTS_AHEAD)
    _check_range("port", params["port"], 0, 65535)
    _check_range("max_requests", params["max_requests"], 1)
    if params["max_points"] is not None and params["num_searches"] not in (
            -1, params["max_points"]):
        raise UsageError("--max_points and --num_searches say the same; give one of them")
    own = any(ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
              for name in SERVE_BACKEND_FLAGS)
    source = search_source(params, ctx)
    budget = Budget(params["max_points"] or source.num_trials,
                    params["num_points_per_generation"] or DEFAULT_POINTS_AHEAD)
    options = build_options(params)
    access = Access(params["host"], params["port"],
                    Path(params["token_file"]) if params["token_file"] else None,
                    params["no_token"], params["allow_commands"], params["max_requests"])
    argv = list((ctx.obj or {}).get("argv", []))
    ctx.exit(serve(source, options, budget, params["lease"], access, own, argv))


def main(argv: list[str] | None = None) -> int:
    """Entry point: click in non-standalone mode so every error is one line, exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = main_group.main(args=args, prog_name="hpsearch", standalone_mode=False,
                               obj={"argv": args})
    except UsageError as exc:
        print(f"hpsearch: error: {exc}", file=sys.stderr)
        return 2
    except SearchError as exc:  # mid-search: the journal and the run directories are intact
        text = str(exc)
        if "resume" not in text:
            text += "; run the same command again to resume"
        print(f"hpsearch: error: {text}", file=sys.stderr)
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
