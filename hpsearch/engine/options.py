"""Every setting of a search, gathered into :class:`SearchOptions`.

The search's own settings and its run policy are declared here, each backend's in
``backends/<name>/options.py``.

The CLI (:mod:`hpsearch.cli.app`) makes its flags from :data:`OPTION_GROUPS` and builds one
:class:`SearchOptions` with :func:`options_from_flags`; the driver and the backends read it
and never look at ``sys.argv``. Flag names follow hypnettorch's ``hpsearch`` where it has one;
the rest are ours.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hpsearch.backends import SCHEDULERS, Placement
from hpsearch.backends.cluster.options import ClusterOptions, QsubOptions
from hpsearch.backends.gpus.options import GpuOptions
from hpsearch.errors import UsageError
from hpsearch.options_decl import REQUIRED, option, own, settle
from hpsearch.runs.preload import PreloadOptions
from hpsearch.spec.resources import ResourceOptions
from hpsearch.tracking import SINKS, check_names

DEFAULT_OUT_DIR = "./out/hyperparam_search"


def _resolved(value: str) -> Path:
    return Path(value).resolve()


def _run_cwd(value: str) -> Path:
    if not Path(value).resolve().is_dir():
        raise ValueError(f"--run_cwd={value} is not a directory; pass the sim's folder")
    return Path(value).resolve()


def _python(value: str | None) -> str:
    python = value or sys.executable
    if not (os.path.isfile(python) and os.access(python, os.X_OK)) and not shutil.which(python):
        raise ValueError(f"--python={python} is not an executable; pass a path to a Python "
                         "interpreter")
    return python


def _check_num_searches(value: int) -> None:
    if value != -1 and value < 1:
        raise ValueError(f"--num_searches={value} is out of range; give -1 (all) or a count "
                         ">= 1")


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """Where the search lives and runs, and which configurations it runs."""

    TITLE: ClassVar[str] = "The search"
    out_dir: Path = option(
        REQUIRED, "The search directory (journal, results CSV, runs/). Running the same "
        "command again with the same --out_dir resumes the search.",
        flag_default=DEFAULT_OUT_DIR, convert=_resolved)
    force_out_dir: bool = option(
        False, "Continue the search in --out_dir even though its script, summary keywords, "
        "objective, algorithm or grid module changed (otherwise refused).")
    run_cwd: Path = option(REQUIRED, "Working directory of the runs (where _SCRIPT_NAME lives).",
                           flag_default=".", convert=_run_cwd)
    num_searches: int = option(
        -1, "Run at most N configurations (-1: all); the trial count of a sampling algorithm "
        "(overrides the search file's num_trials).", aliases=("num_trials",),
        check=_check_num_searches)
    dont_generate_full_grid: bool = option(
        False, "Draw --num_searches random grid points (seeded by --random_seed) instead of "
        "walking the whole grid.")
    deterministic_search: bool = option(
        False, "Run configurations in grid order (default: seeded random order).")
    random_seed: int = option(
        42, "Seed of the search order and of random picks; given explicitly, it overrides a "
        "search file's seed.")
    python: str = option(
        REQUIRED, "Interpreter for the runs (default: the one running hpsearch); a "
        "virtualenv's python works without activating it.", flag_default=None, convert=_python)
    dry_run: bool = option(
        False, "Print the command of each run that would run now (shell-quoted, one per line) "
        "or each job script, and what its config template copy sets; write nothing. On an "
        "existing search it leaves out what already ran; a sampler prints only the proposals "
        "that need no results.")
    log_to: tuple[str, ...] = option(
        (), f"Log every run whose verdict is final to a tracking library: "
        f"{' | '.join(SINKS)} (repeatable; added to the search file's log_to). Each needs "
        "its extra, e.g. pip install 'hpsearch[mlflow]'.", metavar="NAME", check=check_names)

    @staticmethod
    def check_together(values: dict[str, Any]) -> None:
        if values["dont_generate_full_grid"] and values["num_searches"] == -1:
            raise ValueError("--dont_generate_full_grid needs --num_searches=N (how many random "
                             "picks)")


@dataclass(frozen=True, kw_only=True)
class RunPolicy:
    """What the driver does with runs, whatever the backend: how long one may take, how
    often a failed one runs again, when the search gives up, how long a pruned one has to
    stop. Every backend receives these, and only these, of the search's settings."""

    TITLE: ClassVar[str] = "Run policy"
    timeout: float | None = option(
        None, "Seconds a local (or packed) run may take before it is stopped and failed "
        "(finished, if its summary already said finished).", low=0, low_open=True)
    retries: int = option(0, "Run a failed run again up to N more times.", low=0)
    max_failures: int | None = option(None, "Stop the search once N runs have failed for good.",
                                      low=1)
    fail_fast: int = option(
        5, "Stop when the first N runs all failed with the same reason and none finished "
        "(0: never).", low=0)
    prune_grace: float = option(
        60.0, "Seconds a pruned run has to stop after SIGTERM before it is killed.", low=0,
        flag_default=60)
    rerun_failed: bool = option(
        False, "Run the search's failed runs again, with a fresh --retries budget (what "
        "hpsearch retry does).")


#: every group of options, in the order ``--help`` lists them
OPTION_GROUPS: tuple[type, ...] = (
    SearchSettings, RunPolicy, PreloadOptions, Placement, ResourceOptions, GpuOptions,
    ClusterOptions, QsubOptions,
    *(entry.options for entry in SCHEDULERS.values()))


@dataclass(frozen=True, kw_only=True)
class SearchOptions(*OPTION_GROUPS):  # type: ignore[misc]
    """Every setting of one search: the fields of every group of :data:`OPTION_GROUPS`
    (each declared once, in its group), as the command line gave them, checked."""

    @property
    def backend_name(self) -> str:
        """``local`` (CPU slots or GPUs), ``ssh`` (``--hosts``/``--hosts_file``) or the
        cluster scheduler's name."""
        if self.on_hosts:
            return "ssh"
        return self.scheduler if self.run_cluster else "local"

    @property
    def cpu_only(self) -> bool:
        """``--visible_gpus=-1``: runs go to CPU slots, no GPU is looked for."""
        return self.visible_gpus.strip() == "-1"

    @property
    def cpu_slots(self) -> int:
        """How many runs local CPU slots take at once: ``--num_jobs``, or (not given) one per
        CPU this process may use (its affinity mask); a run takes one CPU."""
        return self.num_jobs or len(os.sched_getaffinity(0))

    @property
    def policy(self) -> RunPolicy:
        """The run policy part (what a backend receives of the driver's settings)."""
        return own(RunPolicy, self)


def options_from_flags(flags: dict[str, Any]) -> SearchOptions:
    """The options the flag values (by flag name) give, every one checked and converted;
    UsageError (one line naming the flag and the fix) for a bad one."""
    try:
        return SearchOptions(**settle(OPTION_GROUPS, flags))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
