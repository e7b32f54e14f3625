"""The searches a service runs ("requests", iDDS's word), each one a search directory.

Request 1 is the search the service was started with, in ``--out_dir``. Each request made
over HTTP is a search directory of its own, ``<out_dir>/requests/<id>/`` (ids 2, 3, ...),
with its journal, lock and driver thread, and the request as it came::

    <out_dir>/requests/2/request.json
        {"search": {"parameters": {...}, "algorithm": "tpe"}, "max_points": 50,
         "num_points_per_generation": 10}

so a restarted service serves every request again where it stopped. A served search may
leave out ``script`` and ``metrics`` (:data:`SERVED_DEFAULTS`: the points are computed
elsewhere, and report one ``loss``). ``max_points`` is the trial budget (``num_trials``; a
grid's ``--num_searches``), default the search's own; ``num_points_per_generation``
(default :data:`DEFAULT_POINTS_AHEAD`, iDDS's) is how many ``new`` points are kept ready.

What anyone who can reach the service may ask is bounded: a request made over HTTP names no
command and no file (:data:`COMMAND_SETTINGS`; 403) unless the service was started with
``--allow_commands``, at most ``--max_requests`` requests are live at once (429), and no
search, request 1 included, writes its reports outside its run directories
(:func:`~hpsearch.spec.gridmodule.check_summary_filename`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path
from typing import IO, Any

from hpsearch.backends.base import Backend
from hpsearch.engine.build import build_driver
from hpsearch.engine.driver import Driver, summary_format
from hpsearch.engine.launch import check_out_dir, record_total
from hpsearch.engine.lock import DriverLock
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.progress import Progress
from hpsearch.engine.searchdir import (
    check_same_search,
    describe,
    read_description,
)
from hpsearch.engine.warmstart import warm_started
from hpsearch.errors import UsageError
from hpsearch.runs.files import write_atomic
from hpsearch.service.api_error import ApiError
from hpsearch.service.backend import ExternalBackend, worker_name
from hpsearch.service.limits import DEFAULT_MAX_REQUESTS
from hpsearch.service.observed import ObservedStrategy
from hpsearch.service.points import PointBook
from hpsearch.service.reports import check_report
from hpsearch.service.split import SplitBackend
from hpsearch.spec.gridmodule import SearchSpec, check_summary_filename, resolve_algorithm
from hpsearch.strategies import make_strategy
from hpsearch.strategies.external import ExternalGenerator

REQUESTS_DIR = "requests"
REQUEST_FILE = "request.json"
#: each driver's own lines (runs handed out and ended, warnings) go here, in its directory
LOG_FILE = "service.log"
#: iDDS's default number of points per generation
DEFAULT_POINTS_AHEAD = 10
#: what a served search may leave out
SERVED_DEFAULTS: dict[str, Any] = {"script": "external-worker", "metrics": ["loss"]}
#: the settings of a search that name a command to run or a file to read: a request made
#: over HTTP carries none of them unless the service allows it (--allow_commands)
COMMAND_SETTINGS = ("generator", "script", "config_template", "hydra_config", "from_hydra",
                    "warm_start")


@dataclasses.dataclass(frozen=True)
class Budget:
    """A request's ``max_points`` (None: the search's own) and points kept ahead."""

    max_points: int | None = None
    ahead: int = DEFAULT_POINTS_AHEAD


def apply_budget(spec: SearchSpec, options: SearchOptions, budget: Budget, where: str
                 ) -> tuple[SearchSpec, SearchOptions]:
    """``max_points`` as the trial budget of ``spec``, checked as a search's algorithm is
    (one-line UsageError: a grid over a distribution, a sampler without a budget, ...)."""
    if spec.algorithm == "grid":
        if budget.max_points is not None:
            options = dataclasses.replace(options, num_searches=budget.max_points)
        return resolve_algorithm(spec, None, None, None), options
    if budget.max_points is None and spec.num_trials is None:
        raise UsageError(f"{where}: algorithm {spec.algorithm} needs max_points (or "
                         "num_trials in the search)")
    return resolve_algorithm(spec, None, budget.max_points, None), options


class Request:
    """One served search: its points, its external backend, its driver thread.

    Built in two steps so that nothing is written before the search is known to be good:
    the constructor checks everything, :meth:`start` takes the directory and drives.
    """

    def __init__(self, rid: int, spec: SearchSpec, options: SearchOptions, budget: Budget,
                 lease_s: float, source: str, command: list[str],
                 own: Backend | None = None) -> None:
        self.id = rid
        #: what warm_start told the strategy (:mod:`hpsearch.engine.warmstart`), for the log
        spec, self.warm_line = warm_started(spec, options.out_dir)
        self.spec = spec
        self.options = options
        self.budget = budget
        self.out_dir = options.out_dir
        # a report writes this file: where the search's spec was built it was checked already;
        # checked here again, where the service writes
        check_summary_filename(spec.summary_filename, "summary_file")
        self.book = PointBook(spec.performance_sort_asc, self.out_dir)
        self.inner = make_strategy(spec, options, ahead=budget.ahead)
        self.strategy = ObservedStrategy(self.inner, self.book)
        self.external = ExternalBackend(self.book, summary_format(spec), budget.ahead, lease_s)
        self.backend: Backend = self.external if own is None else SplitBackend(own,
                                                                              self.external)
        check_out_dir(self.out_dir)
        self.meta = describe(spec, source, options.run_cwd, self.backend.name, command,
                             Path.cwd(), self.inner.total, self.inner.total_is_estimate)
        if not options.force_out_dir:
            check_same_search(read_description(self.out_dir), self.meta, self.out_dir)
        self.lock: DriverLock | None = None
        self.driver: Driver | None = None
        self.thread: threading.Thread | None = None
        self.exit_status: int | None = None
        self.error: str | None = None
        self._log: IO[str] | None = None

    # -- life -----------------------------------------------------------------------
    def start(self) -> None:
        self.driver = build_driver(self.spec, self.options, self.strategy, self.backend,
                                   self.meta, self._progress)
        self.lock = self.driver.lock
        self.thread = threading.Thread(target=self._drive, name=f"request {self.id} driver",
                                       daemon=True)
        self.thread.start()
        self.driver.restored.wait()  # until then, a report for a point leased before the
        # restart would find no point (404) and a status would show nothing

    def _progress(self) -> Progress:
        """The driver's lines, in its directory's log (opened once the directory is taken)."""
        self._log = open(self.out_dir / LOG_FILE, "a")  # noqa: SIM115 -- closed by close()
        return Progress(self.spec.performance_key, self.spec.performance_sort_asc,
                        stream=self._log, live=False)

    def _drive(self) -> None:
        assert self.driver is not None
        try:
            self.exit_status = self.driver.run()
            record_total(self.out_dir, self.meta, self.spec, self.inner)
        except Exception as exc:  # the search stopped; the service goes on serving it
            self.error = " ".join(str(exc).split()) or type(exc).__name__

    def stop(self, signum: int) -> None:
        if self.driver is not None:
            self.driver.interrupt(signum)
            self.external.wake()

    def close(self, wait: float) -> None:
        """After :meth:`stop`: wait for the driver, give the directory back."""
        if self.thread is not None:
            self.thread.join(wait)
        if self.lock is not None:
            self.lock.release()
        if self._log is not None:
            self._log.close()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    # -- what the API does ----------------------------------------------------------
    def lease(self, limit: int | None, worker: str) -> list[dict[str, Any]]:
        if self.error is not None:
            raise ApiError(503, f"request {self.id}'s search stopped: {self.error}")
        return self.external.lease(limit, worker)

    def report(self, point_id: int, body: dict[str, Any], worker: str) -> dict[str, Any]:
        """``body`` is a report of the right shape (:class:`~hpsearch.service.app.PointReport`)."""
        return self.external.report(point_id, check_report(body, self.external.fmt,
                                                           worker_name(worker)))

    def status(self) -> dict[str, Any]:
        """``GET /requests/<id>`` (see :mod:`hpsearch.service.app` for the fields)."""
        counts = self.book.counts()
        total = self.inner.total
        generator = self.inner.status() if isinstance(self.inner, ExternalGenerator) else None
        return {
            "request_id": self.id, "out_dir": str(self.out_dir),
            "algorithm": self.spec.algorithm, "objective": self.spec.performance_key,
            "direction": self.spec.directions[0], "max_points": total,
            "num_points_per_generation": self.budget.ahead,
            "lease_seconds": self.external.lease_s, "points": counts,
            "best": self.book.best(),
            "max_points_reached": total is not None and sum(counts.values()) >= total,
            "done": not self.running, "exit_status": self.exit_status, "error": self.error,
            "generator": generator,
        }


class Registry:
    """Every request of one service, by id; request 1 first, then those in ``requests/``."""

    def __init__(self, out_dir: Path, options: SearchOptions, lease_s: float, say: Any,
                 max_live: int = DEFAULT_MAX_REQUESTS, allow_commands: bool = False) -> None:
        self.out_dir = out_dir
        self.options = options
        self.lease_s = lease_s
        self.say = say
        self.max_live = max_live
        self.allow_commands = allow_commands
        self.requests: dict[int, Request] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def get(self, rid: int) -> Request:
        request = self.requests.get(rid)
        if request is None:
            raise ApiError(404, f"there is no request {rid}; requests: "
                           f"{', '.join(map(str, sorted(self.requests)))}")
        return request

    def add(self, request: Request) -> None:
        request.start()
        self.requests[request.id] = request

    def _options_of(self, rid: int) -> SearchOptions:
        return dataclasses.replace(self.options, out_dir=self.out_dir / REQUESTS_DIR / str(rid),
                                   num_searches=-1, fail_fast=0, force_out_dir=False)

    def _request_of(self, rid: int, body: dict[str, Any]) -> Request:
        """A request from its stored or posted body (one-line UsageError; ApiError 403 for
        a command it may not carry)."""
        from hpsearch.spec.searchfile import spec_from_mapping

        search = body.get("search")
        if not isinstance(search, dict):
            raise UsageError("search must be an object of search-file settings")
        carried = [key for key in COMMAND_SETTINGS if key in search]
        if carried and not self.allow_commands:
            raise ApiError(403, f"the search sets {', '.join(carried)}: this service runs no "
                           "command and reads no file that a request names; its owner can "
                           "allow them by starting it with --allow_commands")
        budget = Budget(body.get("max_points"),
                        body.get("num_points_per_generation") or DEFAULT_POINTS_AHEAD)
        options = self._options_of(rid)
        spec = spec_from_mapping({**SERVED_DEFAULTS, **search}, "the search", options.run_cwd,
                                 check_script=False)
        spec, options = apply_budget(spec, options, budget, "the search")
        return Request(rid, spec, options, budget, self.lease_s, f"request {rid}", [])

    def create(self, body: dict[str, Any]) -> int:
        """``POST /requests``: a new search directory and its driver; returns its id."""
        with self._lock:
            if self._stopping:
                raise ApiError(503, "the service is stopping")
            live = sum(request.running for request in self.requests.values())
            if live >= self.max_live:
                raise ApiError(429, f"{live} requests are live, the most this service serves "
                               f"at once (--max_requests={self.max_live}): retry once one is "
                               "done")
            rid = self._next_id()
            try:
                request = self._request_of(rid, body)
            except UsageError as exc:
                raise ApiError(400, str(exc)) from None
            folder = request.out_dir
            try:
                folder.mkdir(parents=True)
                write_atomic(folder / REQUEST_FILE, json.dumps(body) + "\n")
            except OSError as exc:
                raise ApiError(500, f"cannot create {folder}: {exc.strerror}") from None
            self.add(request)
            self.say(f"request {rid}: {request.spec.algorithm} search in {folder}")
            return rid

    def _stored_ids(self) -> list[int]:
        """The ids of the request folders on disk (served or not), ascending."""
        try:
            entries = os.scandir(self.out_dir / REQUESTS_DIR)
        except FileNotFoundError:
            return []
        with entries:
            return sorted(int(e.name) for e in entries if e.name.isdigit())

    def _next_id(self) -> int:
        """One past every request served and every folder on disk: a stored request that
        could not be restored keeps its folder and its id."""
        return max([1, *self.requests, *self._stored_ids()]) + 1

    def restore(self) -> None:
        """Serve again the requests a previous service created (a broken one is skipped
        with a warning)."""
        folder = self.out_dir / REQUESTS_DIR
        for rid in self._stored_ids():
            try:
                with open(folder / str(rid) / REQUEST_FILE) as f:
                    body = json.load(f)
                self.add(self._request_of(rid, body))
            except (OSError, ValueError, UsageError, ApiError) as exc:
                self.say(f"warning: request {rid} ({folder / str(rid)}) is not served: {exc}")

    def stop_all(self, signum: int, wait: float) -> None:
        with self._lock:
            self._stopping = True
        for request in self.requests.values():
            request.stop(signum)
        for request in self.requests.values():
            request.close(wait)
