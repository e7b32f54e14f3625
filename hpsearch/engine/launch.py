"""Start (or resume) a search: validate everything, then take the directory and drive.

Nothing touches ``--out_dir`` until the grid module or search file, the flags and the
backend settings are known to be good, and the directory is known to hold this search (or
none), so a bad input never writes or destroys anything.
"""

from __future__ import annotations

import dataclasses
import gc
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpsearch.backends.base import Backend
from hpsearch.engine.build import build_driver, sinks_of
from hpsearch.engine.driver import restore_inputs
from hpsearch.engine.journal import ENDED, JOURNAL_FILE, History, replay
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import checked_backend, resource_plan
from hpsearch.engine.policy import Policy
from hpsearch.engine.progress import Progress
from hpsearch.engine.searchdir import (
    check_same_search,
    describe,
    is_search_dir,
    read_description,
    write_description,
)
from hpsearch.engine.warmstart import warm_started
from hpsearch.errors import UsageError
from hpsearch.runs.model import Run, make_run, run_id_of
from hpsearch.spec.gridmodule import SearchSpec, resolve_algorithm, with_pruner
from hpsearch.spec.values import storable_config
from hpsearch.strategies import make_strategy
from hpsearch.strategies.base import Strategy


@dataclasses.dataclass(frozen=True)
class SearchSource:
    """Where the search comes from, as the user named it."""

    grid_module: str | None = None
    search_file: Path | None = None
    grid_config: Path | None = None
    algorithm: str | None = None
    num_trials: int | None = None
    seed: int | None = None  # an explicit --random_seed
    pruner: str | None = None  # --pruner, over the search's own
    script: str | None = None  # --script, over the search's own
    config_template: Path | None = None  # --config_template (absolute)
    config_arg: str | None = None
    allow_new_keys: bool | None = None
    arg_format: str | None = None  # --arg_format
    hydra_config: Path | None = None  # --hydra_config (absolute)
    from_hydra: Path | None = None  # --from_hydra (absolute; search files only)

    def overrides(self) -> dict[str, object]:
        """What the command line sets over the search's own settings (search-file names)."""
        given = {"script": self.script, "config_template": self.config_template,
                 "config_arg": self.config_arg, "allow_new_keys": self.allow_new_keys,
                 "arg_format": self.arg_format, "hydra_config": self.hydra_config,
                 "from_hydra": self.from_hydra}
        return {k: str(v) if isinstance(v, Path) else v for k, v in given.items()
                if v is not None}


def load_search(source: SearchSource, run_cwd: Path, check_script: bool = True,
                defaults: dict[str, Any] | None = None) -> SearchSpec:
    """The validated spec, with the command line's overrides applied; ``defaults`` fill
    settings a search file leaves out."""
    if source.search_file is not None:
        from hpsearch.spec.migrate import load_search_file

        spec = load_search_file(source.search_file, run_cwd, check_script, source.overrides(),
                                defaults)
    else:
        from hpsearch.spec.gridmodule import load_spec

        assert source.grid_module is not None
        if source.from_hydra is not None:
            raise UsageError("--from_hydra fills a search file's parameters from a Hydra "
                             "app's sweeper; a grid module has its own grid: use "
                             "--search_file=F (its script: and metrics:) with it")
        spec = load_spec(source.grid_module, run_cwd, source.grid_config, check_script,
                         source.overrides())
    spec = with_pruner(spec, source.pruner)
    return resolve_algorithm(spec, source.algorithm, source.num_trials, source.seed)


def source_name(source: SearchSource, spec: SearchSpec) -> str:
    if spec.source_file is not None:
        return str(Path(spec.source_file).resolve())
    return source.grid_module or str(source.search_file)


def check_out_dir(out_dir: Path) -> None:
    """Refuse (one line) an ``--out_dir`` that is a file or holds something else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out_dir={out_dir} is a file; pass a directory path")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_search_dir(out_dir):
        raise UsageError(f"--out_dir={out_dir} exists and holds files of something else; "
                         "pass a new or empty directory (an existing search directory is "
                         "resumed)")


def run_search(source: SearchSource, options: SearchOptions, command: list[str],
               notes: list[str] | tuple[str, ...] = ()) -> int:
    """Load, check and drive the search; ``notes`` (lines on the flags the search file set)
    are shown with the spec's warnings once the search loaded."""
    spec = load_search(source, options.run_cwd)
    check_out_dir(options.out_dir)
    spec, warm_line = warm_started(spec, options.out_dir)
    for note in [*notes, *([warm_line] if warm_line else [])]:
        print(f"hpsearch: {note}", file=sys.stderr)
    for warning in spec.warnings:
        print(f"hpsearch: warning: {warning}", file=sys.stderr)
    sinks = sinks_of(spec, options)
    strategy = make_strategy(spec, options)
    meta = describe(spec, source_name(source, spec), options.run_cwd, options.backend_name,
                    command, Path.cwd(), strategy.total, strategy.total_is_estimate)
    if not options.force_out_dir:
        check_same_search(read_description(options.out_dir), meta, options.out_dir)
    progress = Progress(spec.performance_key, spec.performance_sort_asc)
    say = HeldLines(progress.message)
    backend = checked_backend(spec, options, say)
    if options.dry_run:
        say.release()
        dry_run(spec, options, strategy, backend)
        return 0

    driver = build_driver(spec, options, strategy, backend, meta, lambda: progress, sinks)
    try:
        say.release()
        progress.message(f"search directory {options.out_dir} ({backend.name} backend, "
                         f"{spec.algorithm})")
        # the modules and the search built so far live as long as the driver: out of the
        # collector's reach, no collection walks them again, nor the interpreter's end
        gc.freeze()
        status = driver.run()
        record_total(options.out_dir, meta, spec, strategy)
        progress.message(f"results: {options.out_dir / 'search_results.csv'}")
        return status
    finally:
        driver.lock.release()


class HeldLines:
    """A ``say`` that holds its lines until :meth:`release`, then says them and passes on
    the later ones: what choosing the backend says (its GPUs, its CPU slots) waits until the
    search directory is taken and its journal read, so a refusal there stays one line."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._held: list[str] | None = []

    def __call__(self, text: str) -> None:
        if self._held is None:
            self._say(text)
        else:
            self._held.append(text)

    def release(self) -> None:
        held, self._held = self._held or [], None
        for text in held:
            self._say(text)


def record_total(out_dir: Path, meta: dict[str, Any], spec: SearchSpec,
                 strategy: Strategy) -> None:
    """Update ``search.json`` when the strategy's total changed while it ran."""
    if strategy.total != meta["total"] or strategy.total_is_estimate != meta[
            "total_is_estimate"]:
        meta.update(total=strategy.total, total_is_estimate=strategy.total_is_estimate)
        write_description(out_dir, meta, spec)


def dry_run(spec: SearchSpec, options: SearchOptions, strategy: Strategy,
            backend: Backend) -> None:
    """Print what the search would run now: each run's command line, or the job scripts;
    with a config template, what each run's copy will set (``# run <id>: model.yml with
    optimizer:learning_rate=0.001``: the copy is written only when the run starts).

    A search directory's journal is read (never written): finished runs are left out, and
    its proposals are reused. A sampler prints only the proposals that need no results.
    """
    history = replay(options.out_dir / JOURNAL_FILE) if options.out_dir.is_dir() else History()
    policy = Policy.of(options)
    strategy.restore(*restore_inputs(history.runs, spec.objectives, policy,
                                     strategy.restored_with_outcomes,
                                     constraints=spec.constraints))
    waiting = [s for s in sorted(history.runs.values(), key=lambda s: s.trial)
               if s.status not in ENDED or s.status == "failed" and policy.retries_left(s)]
    plan = resource_plan(spec, options)
    runs = [make_run(s.run_id, s.trial, s.config, s.args, out_dir=options.out_dir,
                     run_cwd=options.run_cwd, python=options.python, command=spec.command,
                     out_arg=spec.out_arg, resources=plan.of(s.config)) for s in waiting]
    new, note = strategy.preview(sys.maxsize if not strategy.adaptive else 64)
    for p in new:
        run_id = p.run_id or run_id_of(p.config, p.trial)
        runs.append(make_run(run_id, p.trial, p.config, None,
                             out_dir=options.out_dir, run_cwd=options.run_cwd,
                             python=options.python, command=spec.command, out_arg=spec.out_arg,
                             resources=plan.of(p.config)))
    config_file = spec.command.config_file

    def patched(run: Run) -> str:
        return "" if config_file is None else \
            f"# run {run.run_id}: {config_file.describe(storable_config(run.config))}\n"

    scripts = backend.dry_run_scripts(runs)
    if scripts is not None:
        for script in scripts:
            sys.stdout.write(script + "\n")
        sys.stdout.write("".join(patched(run) for run in runs))
    else:
        for run in runs:
            sys.stdout.write(shlex.join(run.argv) + "\n" + patched(run))
    if note:
        print(f"hpsearch: {note}", file=sys.stderr)
    strategy.close()
