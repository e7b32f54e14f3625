"""Read a run's performance summary into metrics, and give the one verdict on an ended run.

The summary file (``_SUMMARY_FILENAME`` in the sim's output dir) has one keyword a line,
followed by a number or a list of numbers, in any order::

    acc_test 0.9312
    loss_test −1.5e-03
    acc_per_task [0.91, 0.95]
    epochs 12
    finished 1

A whole number becomes an int (``12``, ``1``), any other number a float (``-1e-3``,
``nan``, ``inf`` included; the minus sign U+2212 reads as ``-``); several numbers become the
text ``"0.91,0.95"``. Lines with other words are ignored, and so are the keys of a custom
parser's dict that are no keywords: only keywords become results columns. A text longer than
:data:`MAX_TEXT` characters is left out and fails the run (a CSV field that size would break
the readers of the results). A run is finished when its summary is complete (``finished``
reads 1, every objective a number) and its command exited 0 -- or did not end on its own: a
run stopped (by the driver's Ctrl-C or SIGTERM, a ``--timeout``, its scheduler) or killed by
a signal after it wrote that summary is finished too, its work done (it was tearing down:
CUDA, data loaders).

:func:`judge` is the verdict the driver, ``hpsearch collect`` and ``hpsearch status`` all
use: the exit status, the backend's word, the summary and an out-of-memory message in
``stderr.log`` together.
"""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.runs.files import read_reason, read_stderr_tail, says_oom, stderr_reason

_NUMBER = re.compile(
    r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf(?:inity)?\b|nan\b)", re.IGNORECASE)
_INTEGER = re.compile(r"[-+]?\d+")
#: a word that holds a digit: ``0.003``, ``-1e-2``, ``3f2a9c0d1b7e``, ``pytest-12``
_DIGIT_WORD = re.compile(r"[\w.+-]*\d[\w.+-]*")
#: U+2212 MINUS SIGN (what typesetting code writes for a minus) reads as an ASCII minus
_MINUSES = str.maketrans({"\u2212": "-"})
#: the longest text a metric may hold (a list of numbers), far below Python's csv field limit
MAX_TEXT = 10_000


@dataclass(frozen=True)
class SummaryFormat:
    """How a search's runs report: the file, its keywords, the objectives, a custom parser."""

    filename: str
    keywords: list[str]
    objectives: list[str]
    parser: Callable[..., dict[str, Any]] | None = None


@dataclass(frozen=True)
class Verdict:
    """``status`` is ``finished`` or ``failed``; ``reason`` says why a run failed;
    ``stopped``, for a finished run, what stopped it after its summary said finished."""

    status: str
    metrics: dict[str, Any]
    reason: str | None
    stopped: str | None = None


def _number(text: str) -> int | float:
    return int(text) if _INTEGER.fullmatch(text) else float(text)


def parse_value(text: str) -> int | float | str | None:
    """``"0.93"`` -> 0.93, ``"12"`` -> 12, ``"[1, 2e-3]"`` -> ``"1,0.002"``, no number -> None."""
    numbers = _NUMBER.findall(text.translate(_MINUSES))
    if not numbers:
        return None
    if len(numbers) == 1:
        return _number(numbers[0])
    return ",".join(numbers)


def parse_summary_text(text: str, keywords: list[str]) -> dict[str, int | float | str]:
    """Metrics for the keywords found in ``text`` (first occurrence of each wins)."""
    wanted = set(keywords)
    metrics: dict[str, int | float | str] = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] in wanted and parts[0] not in metrics:
            value = parse_value(parts[1])
            if value is not None:
                metrics[parts[0]] = value
    return metrics


def _from_custom_parser(handle: Callable[..., dict[str, Any]], sim_out_dir: Path,
                        index: int, keywords: list[str]) -> dict[str, int | float | str]:
    """hypnettorch's ``_SUMMARY_PARSER_HANDLE(out_dir, run_index)`` -> {key: [value]}, the
    keywords' values only."""
    raw = handle(str(sim_out_dir), index)
    metrics: dict[str, int | float | str] = {}
    for key, value in dict(raw).items():
        if key not in keywords:
            continue
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        parsed = value if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else parse_value(str(value))
        if parsed is not None:
            metrics[key] = parsed
    return metrics


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_metrics(sim_out_dir: Path, fmt: SummaryFormat, index: int = 0
                 ) -> tuple[dict[str, Any], str | None]:
    """The summary's metrics and what is wrong with them (None when the run finished)."""
    try:
        if fmt.parser is not None:
            metrics = _from_custom_parser(fmt.parser, sim_out_dir, index, fmt.keywords)
        else:
            with open(sim_out_dir / fmt.filename, errors="replace") as f:
                metrics = parse_summary_text(f.read(), fmt.keywords)
    except FileNotFoundError:
        return {}, f"summary file {fmt.filename} missing"
    except Exception as exc:  # a custom parser's or the file system's error
        return {}, f"summary unreadable: {type(exc).__name__}: {exc}"
    long = {k: len(v) for k, v in metrics.items() if isinstance(v, str) and len(v) > MAX_TEXT}
    if long:
        key = next(iter(long))
        return {k: v for k, v in metrics.items() if k not in long}, (
            f"summary value of {key} is {long[key]} characters long (at most {MAX_TEXT})")
    missing = [k for k in fmt.keywords if k not in metrics]
    if missing:
        return metrics, f"summary lacks {', '.join(missing)}"
    finished = metrics.get("finished")
    if not (is_number(finished) and finished == 1):
        return metrics, f"summary says finished {finished}"
    for objective in fmt.objectives:
        if not is_number(metrics.get(objective)):
            return metrics, f"objective {objective} is not a number"
    return metrics, None


def describe_exit(exit_code: int) -> str:
    """``"exit status 3"``, ``"exit status 137 (SIGKILL)"``."""
    if exit_code > 128:
        try:
            return f"exit status {exit_code} ({signal.Signals(exit_code - 128).name})"
        except ValueError:
            pass
    return f"exit status {exit_code}"


def judge(run_dir: Path, sim_out_dir: Path, fmt: SummaryFormat, exit_code: int | None,
          reason: str | None, index: int = 0) -> Verdict:
    """The verdict on an ended run. Never raises.

    ``exit_code`` is what the wrapper recorded (None: nothing), ``reason`` what the backend
    knows (the scheduler's word, a timeout, the driver's stop). A complete summary makes
    the run finished when it exited 0 or did not end on its own (a ``reason``, no exit
    status, or death by a signal: 128+N). The reason of a failure is, in this order: the
    backend's reason (with the exit status when there is one), the exit status followed
    by what the command said (the line it left in the run's ``reason`` file, else the line
    of its ``stderr.log`` that says why: ``exit status 1: ValueError: bad lr``, see
    :func:`~hpsearch.runs.files.stderr_reason`), what is wrong with the summary; ``oom
    (...)`` wraps it when stderr says CUDA ran out of memory.
    """
    metrics, problem = read_metrics(sim_out_dir, fmt, index)
    tail: bytes | None = None  # the end of stderr.log, read once
    failure: str | None  # None only when the run exited 0 with a complete summary
    if reason is not None:
        failure = reason if exit_code is None else f"{reason} ({describe_exit(exit_code)})"
    elif exit_code is None:
        failure = "ended without an exit code"
    elif exit_code != 0:
        tail = read_stderr_tail(run_dir)
        said = read_reason(run_dir) or stderr_reason(tail)
        failure = describe_exit(exit_code) + (f": {said}" if said else "")
    else:
        failure = problem
    if problem is None and (exit_code == 0 or stopped(exit_code, reason)):
        return Verdict("finished", metrics, None, failure)  # failure: the stop, if any
    if says_oom(read_stderr_tail(run_dir) if tail is None else tail):
        failure = f"oom ({failure})"
    return Verdict("failed", metrics, failure)


def stopped(exit_code: int | None, reason: str | None) -> bool:
    """Whether a command did not end on its own: the backend says why it ended (a stop, a
    timeout, the scheduler's word), no exit status was recorded, or a signal killed it."""
    return reason is not None or exit_code is None or exit_code > 128


def failure_kind(reason: str) -> str:
    """The reason with the words of what the command said that hold a digit (numbers, run
    ids, ``cuda:0``) replaced by ``#``: runs that failed alike (``exit status 1: ValueError:
    lr 0.003 < 0.01``, ``... lr 0.002 < 0.01``) have one kind, ``exit status 1: ValueError:
    lr # < #``; the exit status stays."""
    head, sep, said = reason.partition(": ")
    return head + sep + _DIGIT_WORD.sub("#", said) if sep else reason


def failure_groups(reasons: Iterable[str]) -> list[tuple[str, int]]:
    """``[(reason, count)]``, most common first: the reasons grouped by
    :func:`failure_kind`, each group shown as its reason when all of its runs said the same,
    else as its kind (``exit status 1: ValueError: lr # < #``)."""
    groups: dict[str, list[str]] = {}
    for reason in reasons:
        groups.setdefault(failure_kind(reason), []).append(reason)
    shown = [(said[0] if len(set(said)) == 1 else kind, len(said))
             for kind, said in groups.items()]
    return sorted(shown, key=lambda pair: -pair[1])


def objective_values(metrics: dict[str, Any], objectives: list[str]) -> list[float] | None:
    """The objectives' values as floats, or None when one is missing, not a number, or NaN
    (a sampler is told such a run failed)."""
    values = [metrics.get(k) for k in objectives]
    if all(is_number(v) and not math.isnan(v) for v in values):
        return [float(v) for v in values]  # type: ignore[arg-type]
    return None


def better(a: float, b: float, ascending: bool) -> bool:
    """Whether ``a`` beats ``b`` (NaN never beats anything)."""
    if math.isnan(a):
        return False
    return math.isnan(b) or (a < b if ascending else a > b)
