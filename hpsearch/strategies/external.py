"""An external generator: ``algorithm: external`` -- iDDS's user-defined HPO generator.

The search file names a command line with iDDS's placeholders::

    algorithm: external
    generator: python gen.py --max %MAX_POINTS --num %NUM_POINTS --in %IN --out %OUT
    generator_timeout: 600       # seconds one call may take (default 600)
    num_trials: 100              # %MAX_POINTS: the search never takes more points

Each call runs the command as an argv (split like a shell would, once, when the search is
loaded; never a shell string, and nothing from a point is ever put in it) in ``--run_cwd``,
with these words replaced wherever they stand as whole words (``--in=%IN`` too):

=============  ==================================================================
``%MAX_POINTS`` the search's point budget (``num_trials``, a request's ``max_points``)
``%NUM_POINTS`` how many points one generation should propose
``%IN``         the absolute path of ``<out_dir>/generator/idds_input.json``, written
                before the call: ``{"points": [[point, loss-or-null], ...],
                "opt_space": <the search's parameters>}`` -- every point proposed so
                far, with the first objective's value once it finished
``%OUT``        the absolute path of ``<out_dir>/generator/idds_output.json``, which the
                generator writes: a JSON list of new points (``[{"lr": 0.01}, ...]``);
                ``[]`` ends the generation for good
=============  ==================================================================

A container generator mounts the search directory at the same path
(``docker run --rm -v /abs/out:/abs/out image gen %IN %OUT``). A call that exits non-zero,
runs past ``generator_timeout`` (its process group is stopped) or writes anything but a list
of points (objects whose keys are the search's parameters, with text, number or boolean
values) is a failed call: it is logged, and the next call waits 1 s, 2 s, 4 s, ... up to
60 s; it never ends the search. Every call is one JSON line in ``<out_dir>/generator.log``::

    {"t": 1732350000.1, "call": 3, "status": "ok", "points": 10, "seconds": 0.21,
     "detail": null, "retry_in": null}

(``status``: ``ok``, ``empty`` (the generator returned ``[]``), ``crashed``, ``timeout``,
``malformed``). :meth:`ExternalGenerator.status` gives the same for a service's status.

Unlike the other strategies this one touches the filesystem: iDDS's protocol is files. It
calls the generator in a thread of its own, when no point it made is left and the budget is
not spent; ``ask`` returns what is ready and ``busy`` says a call runs. A resumed search
reuses the journaled points (they are not generated again) and calls the generator again
for more; whether a generator had said ``[]`` is not journaled, so it is asked once more.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.runs.files import tail_lines, write_atomic
from hpsearch.runs.processes import stop_groups
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.searchfile import GENERATOR_PLACEHOLDER
from hpsearch.spec.values import check_argv_text
from hpsearch.strategies.base import Outcome, Proposal, Strategy

GENERATOR_DIR = "generator"
GENERATOR_LOG = "generator.log"
INPUT_FILE = "idds_input.json"
OUTPUT_FILE = "idds_output.json"
#: the first wait after a failed call, doubled after each further failure, up to the second
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
#: seconds between SIGTERM and SIGKILL for a generator past its time
KILL_GRACE_S = 2.0


def substitute(argv: Sequence[str], values: dict[str, str]) -> list[str]:
    """``argv`` with each placeholder (``%IN``, ...) replaced by ``values[name]``."""
    return [GENERATOR_PLACEHOLDER.sub(lambda m: values[m.group(1)], word) for word in argv]


def check_points(data: Any, spec: SearchSpec) -> list[dict[str, Any]]:
    """The generator's output as configurations; ValueError says what is wrong with it."""
    if not isinstance(data, list):
        raise ValueError(f"the output is a JSON {type(data).__name__}, not a list of points")
    required = list(spec.parameters)
    allowed = set(spec.config_keys())
    points = []
    for i, point in enumerate(data):
        if not isinstance(point, dict):
            raise ValueError(f"point {i} is {json.dumps(point)[:80]}, not an object")
        missing = [k for k in required if k not in point]
        unknown = [k for k in point if k not in allowed]
        if missing or unknown:
            raise ValueError(f"point {i} {'lacks ' + ', '.join(missing) if missing else ''}"
                             f"{'; ' if missing and unknown else ''}"
                             f"{'has unknown ' + ', '.join(unknown) if unknown else ''}")
        for key, value in point.items():
            if isinstance(value, float) and not math.isfinite(value) or not isinstance(
                    value, (str, int, float, bool)):
                raise ValueError(f"point {i}: {key} is {json.dumps(value)[:80]}, not a text, "
                                 "finite number or boolean")
            if isinstance(value, str):
                try:
                    check_argv_text(f"point {i}: {key}", value)
                except UsageError as exc:
                    raise ValueError(str(exc)) from None
        points.append(point)
    return points


class ExternalGenerator(Strategy):
    """Points from the search's generator command (module docstring)."""

    adaptive = True

    def __init__(self, spec: SearchSpec, num_trials: int, num_points: int, out_dir: Path,
                 cwd: Path) -> None:
        assert spec.generator is not None
        program = spec.generator[0]
        if shutil.which(program) is None and not (cwd / program).is_file():
            raise UsageError(f"generator command {program!r} is not on PATH nor a file in "
                             f"--run_cwd {cwd}; give the generator's full path")
        self._spec = spec
        self._argv = spec.generator
        self._timeout = spec.generator_timeout
        self._num_trials = num_trials
        self._num_points = max(1, num_points)
        self._dir = out_dir / GENERATOR_DIR
        self._log = out_dir / GENERATOR_LOG
        self._cwd = cwd
        self._lock = threading.Lock()
        self._configs: list[dict[str, Any]] = []  # by trial
        self._losses: dict[int, float | None] = {}
        self._ready: deque[dict[str, Any]] = deque()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._exhausted = False
        self._calls = 0
        self._failures = 0  # in a row
        self._retry_at = 0.0
        self._last: dict[str, Any] | None = None
        self._closed = False

    # -- the seam -------------------------------------------------------------------
    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        if [p.trial for p in proposals] != list(range(len(proposals))):
            raise ValueError("restore needs the proposals in trial order 0, 1, 2, ...")
        self._configs = [dict(p.config) for p in proposals]
        for outcome in outcomes:
            self.tell(outcome)

    def ask(self, n: int) -> list[Proposal]:
        with self._lock:
            out = []
            while self._ready and len(out) < n and len(self._configs) < self._num_trials:
                config = self._ready.popleft()
                out.append(Proposal(len(self._configs), config,
                                    {"generation": self._calls}))
                self._configs.append(config)
            if (not self._ready and not self._exhausted and self._thread is None
                    and not self._closed and len(self._configs) < self._num_trials
                    and time.monotonic() >= self._retry_at):
                self._start_call()
        return out

    def tell(self, outcome: Outcome) -> None:
        value = outcome.values[0] if outcome.status == "finished" and outcome.values else None
        with self._lock:
            self._losses[outcome.trial] = value

    @property
    def done(self) -> bool:
        with self._lock:
            return len(self._configs) >= self._num_trials or (
                self._exhausted and not self._ready)

    @property
    def total(self) -> int:
        return self._num_trials

    @property
    def total_is_estimate(self) -> bool:
        return not self.done

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        return [], "algorithm external: the points come from the generator once it runs"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread, pid = self._thread, self._pid
        if pid is not None:
            stop_groups([pid], KILL_GRACE_S)
        if thread is not None:
            thread.join(KILL_GRACE_S + 1)

    def status(self) -> dict[str, Any]:
        """For a service's status: ``{"calls": 3, "failures_in_a_row": 0, "running": false,
        "exhausted": false, "retry_in": null, "last": <its generator.log line>}``."""
        with self._lock:
            wait = self._retry_at - time.monotonic()
            return {"calls": self._calls, "failures_in_a_row": self._failures,
                    "running": self._thread is not None, "exhausted": self._exhausted,
                    "retry_in": round(wait, 1) if self._failures and wait > 0 else None,
                    "last": self._last}

    # -- one call -------------------------------------------------------------------
    def _start_call(self) -> None:
        """Under the lock: snapshot the input and start the call's thread."""
        self._calls += 1
        points = [[config, self._losses.get(trial)] for trial, config in
                  enumerate(self._configs)]
        left = self._num_trials - len(self._configs)
        self._thread = threading.Thread(
            target=self._call, args=(self._calls, points, min(left, self._num_points)),
            name=f"generator call {self._calls}", daemon=True)
        self._thread.start()

    def _call(self, call: int, points: list[Any], num_points: int) -> None:
        started = time.monotonic()
        try:
            status, detail, got = self._run(points, num_points)
        except OSError as exc:
            status, detail, got = "crashed", f"cannot run {self._argv[0]}: {exc.strerror}", []
        self._finish(call, status, detail, got, time.monotonic() - started)

    def _run(self, points: list[Any], num_points: int
             ) -> tuple[str, str | None, list[dict[str, Any]]]:
        self._dir.mkdir(parents=True, exist_ok=True)
        source, target = self._dir / INPUT_FILE, self._dir / OUTPUT_FILE
        write_atomic(source, json.dumps({"points": points,
                                         "opt_space": self._spec.parameters_json()}) + "\n")
        if target.exists():
            target.unlink()
        argv = substitute(self._argv, {"MAX_POINTS": str(self._num_trials),
                                       "NUM_POINTS": str(num_points), "IN": str(source),
                                       "OUT": str(target)})
        stderr = self._dir / "stderr.log"
        with open(self._dir / "stdout.log", "wb") as out, open(stderr, "wb") as err:
            proc = subprocess.Popen(argv, cwd=self._cwd, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
            with self._lock:
                self._pid = proc.pid
            try:
                code = proc.wait(self._timeout)
            except subprocess.TimeoutExpired:
                stop_groups([proc.pid], KILL_GRACE_S)
                proc.wait()
                return "timeout", f"still running after {self._timeout:g}s: stopped", []
            finally:
                with self._lock:
                    self._pid = None
        if code != 0:
            said = " | ".join(tail_lines(stderr, 3))
            return "crashed", f"exit status {code}" + (f": {said}" if said else ""), []
        try:
            with open(target) as f:
                got = check_points(json.load(f), self._spec)
        except FileNotFoundError:
            return "malformed", f"it wrote no {OUTPUT_FILE}", []
        except (ValueError, UnicodeDecodeError) as exc:
            return "malformed", " ".join(str(exc).split())[:300], []
        return ("ok" if got else "empty"), None, got

    def _finish(self, call: int, status: str, detail: str | None, got: list[dict[str, Any]],
                seconds: float) -> None:
        with self._lock:
            self._thread = None
            retry_in = None
            if status == "ok":
                self._ready.extend(got)
                self._failures = 0
            elif status == "empty":
                self._exhausted = True
                self._failures = 0
            else:
                retry_in = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** self._failures)
                self._failures += 1
                self._retry_at = time.monotonic() + retry_in
            self._last = {"t": round(time.time(), 3), "call": call, "status": status,
                          "points": len(got), "seconds": round(seconds, 3), "detail": detail,
                          "retry_in": retry_in}
            line = json.dumps(self._last) + "\n"
        # the log is for people: a failed write loses nothing the status does not show
        with contextlib.suppress(OSError), open(self._log, "a") as f:
            f.write(line)
