"""The ``hpsearch`` command line: run a search (hypnettorch's flags), or collect/status/cancel.

``hpsearch --grid_module=M [flags]`` runs a search; ``hpsearch collect|status|cancel OUT_DIR``
and ``hpsearch wrap`` act on one. Every bad input ends in one line ``hpsearch: error: ...``
and exit status 2, before anything is written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from hpsearch.backends import SCHEDULERS, scheduler_names
from hpsearch.backends.cluster.options import DriverJob, option_key
from hpsearch.cli.flags import GroupedCommand, GroupedGroup, declared_flags
from hpsearch.engine.options import OPTION_GROUPS, SearchOptions, options_from_flags
from hpsearch.errors import SearchError, UsageError
from hpsearch.options_decl import check_range, declared, settle
from hpsearch.service.limits import DEFAULT_MAX_REQUESTS, MAX_POINTS_AHEAD
from hpsearch.tracking import SINKS


def _check_range(name: str, value: float | None, low: float, high: float | None = None,
                 low_open: bool = False) -> None:
    """A subcommand's own number flag checked (its bound named in one line)."""
    try:
        check_range(name, value, low, high, low_open)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def build_options(params: dict[str, Any]) -> SearchOptions:
    """Validate flag values and resolve paths; raises UsageError naming the flag."""
    return options_from_flags(params)


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
        allow_new_keys=True if params["allow_new_keys"] else None,
        arg_format=params["arg_format"],
        hydra_config=_absolute(params["hydra_config"]),
        from_hydra=_absolute(params["from_hydra"]))


def _absolute(path: str | None) -> Path | None:
    return Path(path).resolve() if path else None


def with_file_settings(params: dict[str, Any], ctx: click.Context, source: Any
                       ) -> tuple[dict[str, Any], list[str]]:
    """``params`` with the backend settings the search file carries (hyper_opt's slurm:,
    hpogrid's max_concurrent) where no flag was given, and the lines that say so (shown once
    the search loaded). An item of a repeatable flag (``--sbatch_option``) of the file is
    added unless the command line gives one of the same name."""
    if source.search_file is None:
        return params, []
    from hpsearch.spec.migrate import suggested_options

    backend = params["scheduler"] if params["run_cluster"] else "local"
    suggested, notes = suggested_options(source.search_file, backend, native_flags(backend))
    lines = [f"warning: {note}" for note in notes]
    params, applied = dict(params), []
    repeatable = {o.flag for group in OPTION_GROUPS for o in declared(group)
                  if o.kind == "multiple"}
    for name, value in suggested.items():
        if name in repeatable:
            given = {option_key(item) for item in params[name]}
            added = [item for item in value if option_key(item) not in given]
            params[name] = (*added, *params[name])
            applied += [f"--{name}={item}" for item in added]
        elif ctx.get_parameter_source(name) in (None, click.core.ParameterSource.DEFAULT):
            params[name] = value
            applied.append(f"--{name}" if value is True else f"--{name}={value}")
    if applied:
        lines.append(f"from {source.search_file.name}: {' '.join(applied)}")
    return params, lines


def native_flags(backend: str) -> dict[str, str]:
    """The scheduler's own option names -> our flags (``{"mem": "slurm_mem", ...}``; ``*``:
    the flag that takes any other option), from its declarations; empty for ``local``."""
    entry = SCHEDULERS.get(backend)
    if entry is None:
        return {}
    return {o.spec.native: o.flag for o in declared(entry.job) if o.spec.native}


# -- flags ----------------------------------------------------------------------------
def _search_flags(func: Any) -> Any:
    """The flags that name the search (a grid module or a search file and their
    overrides), then every declared option (:data:`OPTION_GROUPS`), group by group."""
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
        click.option("--arg_format", type=click.Choice(["flags", "hydra"]), default=None,
                     help="How runs get their parameters: flags (--lr=0.01, the default) or "
                     "hydra (Hydra overrides: lr=0.01, +new_key=1, hydra.run.dir=<run>/out); "
                     "over the search file's arg_format."),
        click.option("--hydra_config", type=click.Path(dir_okay=False), default=None,
                     help="The Hydra app's primary config (conf/config.yaml): keys it lacks "
                     "are passed as +key=value."),
        click.option("--from_hydra", type=click.Path(dir_okay=False), default=None,
                     help="Read the search space (hydra.sweeper.params, direction, n_trials, "
                     "sampler) from a Hydra app's Optuna-sweeper config; implies "
                     "--arg_format=hydra."),
        click.option("--algorithm", default=None,
                     help="grid | random | qmc | tpe | cmaes | gp | nsga2 | external; "
                     "overrides the grid module's _ALGORITHM or the search file's algorithm."),
        click.option("--pruner", default=None,
                     help="Early stopping: none | asha | hyperband | median; overrides the "
                     "grid module's _PRUNER or the search file's pruner (default: theirs, "
                     "else none)."),
        click.option("--grid_config", type=click.Path(dir_okay=False), default=None,
                     help="Pickle file with 'grid' and/or 'conditions' overriding the "
                     "module's."),
        click.option("--dont_force_new_dir", is_flag=True, help="Accepted for hypnettorch "
                     "compatibility: an existing search directory is always resumed."),
    ]
    func = declared_flags(OPTION_GROUPS)(func)
    for flag in reversed(flags):
        func = flag(func)
    return func


@click.group(cls=GroupedGroup, invoke_without_command=True,
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


@main_group.command("wrap", cls=GroupedCommand,
                    context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@declared_flags([DriverJob])
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
    from hpsearch.engine.launch import load_search
    from hpsearch.engine.placement import driver_options, driver_script

    with main_group.make_context("hpsearch", list(search_args), resilient_parsing=False) as sub:
        params = dict(sub.params)
        source = search_source(params, sub)
        params, notes = with_file_settings(params, sub, source)
    options = build_options(params)
    if not options.run_cluster:
        raise UsageError("hpsearch wrap runs the driver as a batch job that submits the runs: "
                         f"add --run_cluster --scheduler={scheduler_names()}")
    load_search(source, options.run_cwd)
    for note in notes:
        print(f"hpsearch: {note}", file=sys.stderr)
    try:
        job = DriverJob(**settle([DriverJob], {"driver_hours": driver_hours,
                                               "driver_mem": driver_mem,
                                               "driver_partition": driver_partition}))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    own = driver_options(options, job.driver_hours, job.driver_mem, job.driver_partition)
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
@click.option("--serve", is_flag=True, help="Serve the page over HTTP instead of writing it, "
              "updating while the search runs (new runs, curves and verdicts appear without "
              "a reload); the URL printed carries the token. Ctrl-C ends it.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="With --serve: the address to listen on (every request needs the token, "
              "on loopback too).")
@click.option("--port", type=int, default=8788, show_default=True,
              help="With --serve: the port to listen on (0: any free one).")
@click.option("--token-file", "--token_file", "token_file", type=click.Path(dir_okay=False),
              default=None, help="With --serve: the file holding the token every request "
              "must send (default: one generated into OUT_DIR/report.token, mode 0600, kept "
              "across restarts).")
@click.option("--no_token", is_flag=True, default=False,
              help="With --serve: serve without a token, on loopback only: ANY user of this "
              "machine can then read the report.")
@click.pass_context
def report_command(ctx: click.Context, out_dir: str, output: str | None, terminal: bool,
                   top: int, grid_module: str | None, serve: bool, host: str, port: int,
                   token_file: str | None, no_token: bool) -> None:
    """Write one self-contained HTML report of the search in OUT_DIR (opens offline), or
    serve it live (--serve).

    Also for a running search, one whose driver died, and a hypnettorch directory.
    """
    from hpsearch.inspect.report import report_cli
    from hpsearch.inspect.report.live import Listen, serve_report

    listening = [f"--{name}" for name in ("host", "port", "token_file", "no_token")
                 if ctx.get_parameter_source(name) not in (None,
                                                           click.core.ParameterSource.DEFAULT)]
    path = Path(out_dir).resolve()
    if not serve:
        if listening:
            raise UsageError(f"{', '.join(listening)} only apply with --serve; add --serve "
                             "or leave them out")
        report_cli(path, output and Path(output), terminal, top, grid_module)
        return
    if output is not None or terminal:
        raise UsageError("--serve serves the page and writes no file; leave out "
                         f"{'-o' if output is not None else '--terminal'}")
    listen = Listen(host, port, Path(token_file) if token_file else None, no_token)
    ctx.exit(serve_report(path, grid_module, listen))


@main_group.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "optuna", *SINKS]),
              required=True,
              help="json: every run with its curve; csv: the results table with commas; "
              "optuna: an Optuna journal file (optuna-dashboard FILE opens it); mlflow, "
              "tensorboard, wandb: every ended run logged as --log_to logs it.")
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


@main_group.command("serve", cls=GroupedCommand)
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
