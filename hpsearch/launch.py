"""Start (or resume) a search: validate everything, then create the directory and drive.

Nothing touches ``--out_dir`` until the grid module, the flags and the backend settings are
known to be good, so a bad input never writes or destroys anything.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from hpsearch.backends import make_backend
from hpsearch.backends.cluster import ClusterBackend
from hpsearch.driver import Driver
from hpsearch.errors import UsageError
from hpsearch.journal import DriverLock
from hpsearch.options import SearchOptions
from hpsearch.progress import Progress
from hpsearch.runs import make_run
from hpsearch.searchdir import describe, is_search_dir, layout_of, write_description
from hpsearch.space import SearchSpace
from hpsearch.spec import load_spec


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out_dir={out_dir} is a file; pass a directory path")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_search_dir(out_dir):
        raise UsageError(f"--out_dir={out_dir} exists and holds files of something else; "
                         "pass a new or empty directory (an existing search directory is "
                         "resumed)")


def run_search(grid_module: str, options: SearchOptions, grid_config: Path | None) -> int:
    spec = load_spec(grid_module, options.run_cwd, grid_config)
    space = SearchSpace(spec.grid, spec.conditions, deterministic=options.deterministic_search,
                        seed=options.random_seed, num_searches=options.num_searches,
                        random_picks=options.dont_generate_full_grid)
    _check_out_dir(options.out_dir)
    progress = Progress(space.size_hint, spec.performance_key, spec.performance_sort_asc)
    for warning in spec.dropped_conditions:
        progress.message(f"warning: {warning}")
    backend = make_backend(options, progress.message)
    if options.dry_run:
        runs = (make_run(index, config, out_dir=options.out_dir, run_cwd=options.run_cwd,
                         python=options.python, script_name=spec.script_name,
                         out_arg=spec.out_arg) for index, config in enumerate(space))
        if isinstance(backend, ClusterBackend):
            for script in backend.dry_run_scripts(list(runs)):
                sys.stdout.write(script + "\n")
        else:
            for run in runs:
                sys.stdout.write(shlex.join(run.argv) + "\n")
        return 0

    lock = DriverLock(options.out_dir)
    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as exc:
        raise UsageError(f"cannot use --out_dir={options.out_dir}: {exc.strerror}; pass a "
                         "directory you can write to") from None
    try:
        meta = describe(spec, grid_module, options.run_cwd, space.size_hint, backend.name)
        write_description(options.out_dir, meta, spec)
        progress.message(f"search directory {options.out_dir} ({backend.name} backend)")
        driver = Driver(spec, options, space, backend, layout_of(meta), progress)
        status = driver.run()
        progress.message(f"results: {options.out_dir / 'search_results.csv'}")
        return status
    finally:
        lock.release()
