"""An Optuna search computed in a process of its own.

In one interpreter the sampler (TPE's ``ask`` takes milliseconds a trial) and the driver's
bookkeeping (launches, the journal, the run files, the verdicts) take turns under one
interpreter lock, so each slows the other. :class:`SamplerProcess` runs the very same
:class:`~hpsearch.strategies.optuna.strategy.OptunaSearch` in a child
(``python -m hpsearch.strategies.optuna.process``) and answers its three calls --
``restore``, ``propose``, ``record`` -- over the child's stdin and stdout, so the same calls
in the same order give the same proposals as in-process, and the two run on two CPUs.

The protocol: pickled tuples, one per call, answered in order -- all but ``record``::

    parent -> child   ("start", spec, seed, options)      first, once
                      ("restore", proposals, outcomes) | ("propose",) | ("record", outcome)
    child -> parent   ("ok", result)  or  ("error", exception)

A ``record`` is not answered (the driver goes on at once, the child goes on to the next
call): an exception it raised is the answer to the next call, which then is not made.

The child owns nothing on disk (the journal stays the driver's). It ends when its stdin
closes -- the driver closed it, or died: a ``kill -9`` of the driver leaves no sampler
behind once the ask in progress is done. It runs in a session of its own, so the Ctrl-C of a
terminal reaches only the driver, which then closes it.

The child is spawned first (:class:`SamplerProcess` takes no arguments), so that it imports
Optuna while the driver starts -- the driver imports it only to check ``algorithm_options``
or to sample in its own process; :meth:`SamplerProcess.start` then hands it the search, and
:meth:`SamplerProcess.wait_started`, before the first call, takes its answer. A search the
child cannot take -- a grid value of a class only the grid module defines, which does not
pickle or does not unpickle there -- raises :class:`SamplerUnavailable` from either, and
the strategy samples in its own process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from hpsearch.errors import BackendError
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.base import Outcome, Proposal

#: seconds :meth:`SamplerProcess.close` waits for the child to end before killing it
CLOSE_WAIT_S = 5.0
#: the folder holding this very ``hpsearch`` package: the child starts there, so that it
#: imports the same one
_PACKAGE_ROOT = Path(__file__).resolve().parents[3]


class SamplerUnavailable(Exception):
    """The child could not take the search (a grid value of a class only the grid module
    defines cannot be pickled or unpickled there): sample in this process instead."""


class SamplerProcess:
    """``OptunaSearch(spec, seed, options)`` in a child process, with the same methods:
    spawn it, :meth:`start` it with the search, :meth:`close` it."""

    def __init__(self) -> None:
        """Spawn the child; it imports Optuna while the caller goes on."""
        self._algorithm = "Optuna"  # the sampler's name, once started
        self._started = False
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "hpsearch.strategies.optuna.process"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=_PACKAGE_ROOT,
                start_new_session=True)
        except OSError as exc:
            raise SamplerUnavailable(str(exc)) from exc

    def start(self, spec: SearchSpec, seed: int, options: dict[str, Any]) -> None:
        """Hand the child the search (its answer is taken by :meth:`wait_started`)."""
        self._algorithm = spec.algorithm
        # what the child needs of the spec: the space, objectives and directions, not the
        # command or a grid module's summary parser
        needed = dataclasses.replace(spec, command=None, summary_parser=None,
                                     source_file=None, warnings=[])
        try:
            self._send("start", needed, seed, options)
        except Exception as exc:  # noqa: BLE001 - a value that does not pickle here
            self.close()
            raise SamplerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def wait_started(self) -> None:
        """Wait for the child's answer to the start (it imports Optuna meanwhile, while the
        driver goes on with its own start); SamplerUnavailable when it refused the search."""
        if self._started:
            return
        try:
            self._receive()
        except Exception as exc:  # noqa: BLE001 - whatever kept the child from starting
            self.close()
            raise SamplerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        self._started = True

    def _send(self, *message: Any) -> None:
        assert self._child.stdin is not None
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)  # whole, or nothing sent
        try:
            self._child.stdin.write(data)
            self._child.stdin.flush()
        except OSError:
            self._ended()

    def _receive(self) -> Any:
        assert self._child.stdout is not None
        try:
            kind, value = pickle.load(self._child.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            self._ended()
        if kind == "error":
            raise value
        return value

    def _ended(self) -> NoReturn:
        try:  # its pipes closed: it is ending, if not gone already
            code: int | None = self._child.wait(CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            code = None
        raise BackendError(f"the {self._algorithm} sampler's process ended (exit status "
                           f"{code if code is not None else 'unknown'}); run the same "
                           "command again to resume") from None

    def _call(self, *message: Any) -> Any:
        assert self._started, "wait_started() first"
        self._send(*message)
        return self._receive()

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        self._call("restore", list(proposals), list(outcomes))

    def propose(self) -> Proposal:
        return self._call("propose")

    def record(self, outcome: Outcome) -> None:
        """Not answered: an error of it is raised by the next call."""
        assert self._started, "wait_started() first"
        self._send("record", outcome)

    def close(self) -> None:
        """Close the child's stdin (it ends after the call in progress) and reap it."""
        with contextlib.suppress(OSError):
            assert self._child.stdin is not None
            self._child.stdin.close()
        try:
            self._child.wait(CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()


def _reply(answers: BinaryIO, reply: tuple[str, Any]) -> None:
    """Write one answer. A driver that is gone (it ended, at a bad input say, before its
    sampler had started) ends the child at once and quietly: nobody is left to tell."""
    try:
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception (or result) that cannot be pickled
        data = pickle.dumps(("error", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))
    try:
        answers.write(data)
        answers.flush()
    except OSError:
        os._exit(0)  # not sys.exit: the unflushed answer would be flushed again, and fail


def serve(calls: BinaryIO, answers: BinaryIO) -> None:
    """The child's loop: answer each call until ``calls`` ends (module docstring)."""
    # Optuna, in the child only: the driver imports this module and does without it
    from hpsearch.strategies.optuna.strategy import OptunaSearch

    search: OptunaSearch | None = None
    unanswered: Exception | None = None  # raised by a record, which has no answer
    while True:
        try:
            message = pickle.load(calls)
        except EOFError:
            return
        except Exception as exc:  # noqa: BLE001 - a call it cannot read ends it, answered
            _reply(answers, ("error", RuntimeError(
                f"cannot read the call: {type(exc).__name__}: {exc}")))
            return
        kind, *args = message
        if unanswered is not None:
            if kind != "record":
                _reply(answers, ("error", unanswered))
                unanswered = None
            continue
        try:
            if kind == "start":
                search = OptunaSearch(*args)
                result = None
            elif search is None:
                raise RuntimeError(f"sampler process: {kind!r} before 'start'")
            elif kind in ("restore", "propose", "record"):
                result = getattr(search, kind)(*args)
            else:
                raise ValueError(f"sampler process: unknown call {kind!r}")
        except Exception as exc:  # noqa: BLE001 - every error goes back to the driver
            if kind == "record":
                unanswered = exc
            else:
                _reply(answers, ("error", exc))
            continue
        if kind != "record":
            _reply(answers, ("ok", result))


def main() -> None:
    """Entry point of the child: the protocol on the stdout it was started with, anything
    printed (a library's stray output) on stderr."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, answers)
    # nothing of the child's is left to save (every answer is flushed, nothing is on
    # disk): end now, not after tearing down Optuna's and numpy's modules, which the
    # driver's close would wait for
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
