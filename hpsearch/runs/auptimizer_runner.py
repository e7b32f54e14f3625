"""Run an Auptimizer script unchanged: ``<script> <config.json>``, results from stderr.

The script of an ``experiment.json`` (:mod:`hpsearch.spec.migrate.auptimizer`). Auptimizer
runs a job as ``<script> <config.json>``: the job's parameters in a JSON file the script
reads with ``aup.BasicConfig().load(sys.argv[1])`` (or the ``@aup_args`` decorator), and
the script reports with ``aup.print_result(value)``, which writes ``#Auptimizer:<value>`` to
stderr -- a list is joined by commas: the result first, then the ``multi_res_labels``. The
last such line is the result, earlier ones are intermediate results. hpsearch starts this
runner as the run's command, in ``--run_cwd``::

    python -m hpsearch.runs.auptimizer_runner rosenbrock_hpo.py aup_result.txt flops,params \\
        --out_dir=<search>/runs/<run_id>/out --x=1.5 --y=-2.0

(the flags are for people reading the command: the configuration comes from
``<run_dir>/run.json``, with its JSON types, as for :mod:`hpsearch.runs.objective_runner`).
It writes ``<out_dir>/config.json`` -- the configuration -- and runs ``python <script>
<config.json>`` (a script not named ``*.py`` runs as itself, as Auptimizer runs it), passing
its stdout and stderr on. Each ``#Auptimizer:`` line but the last is reported as step 1, 2,
... (:func:`hpsearch.report`: curves, pruning); the last one becomes the summary file::

    result 0.25
    flops 1200
    finished 1

A script that fails exits with its own status; one that printed no ``#Auptimizer:`` line, or
one whose value is no number, fails with that reason (exit 1); a runner called wrongly exits 2.
Standard library only.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from hpsearch.runs.objective_runner import RunnerError, leave_reason, read_config, summary_text
from hpsearch.runs.reporter import OUT_DIR_VARIABLE, report

#: what ``aup.print_result`` writes before the value
PREFIX = "#Auptimizer:"
#: the metric the result is summarised as
RESULT = "result"
#: the job's parameters, in the run's output directory
CONFIG_FILE = "config.json"
USAGE = ("usage: python -m hpsearch.runs.auptimizer_runner SCRIPT SUMMARY_FILE LABELS "
         "--out_dir=<run_dir>/out [flags shown for reading only]")


def values_of(line: str, labels: list[str]) -> dict[str, float]:
    """The metrics of one ``#Auptimizer:`` line's text after the prefix: the result, then
    as many of the ``multi_res_labels`` as it has values (the last line needs them all)."""
    words = [w.strip() for w in line.split(",")]
    names = [RESULT, *labels]
    if len(words) > len(names):
        raise RunnerError(f"the script printed {PREFIX}{line.strip()}: {len(words)} values, "
                          f"but the result and multi_res_labels {labels} make {len(names)}")
    metrics = {}
    for name, word in zip(names, words, strict=False):
        try:
            value = float(word)
        except ValueError:
            raise RunnerError(f"the script printed {PREFIX}{line.strip()}: {word!r} is not "
                              "a number") from None
        metrics[name] = int(value) if word.lstrip("+-").isdigit() else value
    return metrics


def run_script(script: str, config_file: Path, labels: list[str]) -> tuple[int, dict[str, float]]:
    """Run the script; its exit status and its last result (intermediate ones reported)."""
    argv = [sys.executable, script] if script.endswith(".py") else [str(Path(script).resolve())]
    child = subprocess.Popen([*argv, str(config_file)], stderr=subprocess.PIPE, text=True,
                             errors="replace")
    assert child.stderr is not None
    results: list[dict[str, float]] = []
    for line in child.stderr:
        sys.stderr.write(line)
        if line.startswith(PREFIX):
            if results:
                report(step=len(results), **{k: v for k, v in results[-1].items()
                                             if not math.isnan(v)})
            results.append(values_of(line[len(PREFIX):], labels))
    status = child.wait()
    if status == 0 and not results:
        raise RunnerError(f"{script} printed no {PREFIX} line; report the result with "
                          "aup.print_result(value)")
    missing = [k for k in (RESULT, *labels) if results and k not in results[-1]]
    if status == 0 and missing:
        raise RunnerError(f"the script's last {PREFIX} line has no value of "
                          f"{', '.join(missing)} (multi_res_labels); print the result and "
                          "every label's value, joined by commas")
    return status, results[-1] if results else {}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4 or not args[3].startswith("--") or "=" not in args[3]:
        print(USAGE, file=sys.stderr)
        return 2
    script, summary_file, label_word, out_word = args[:4]
    labels = [w for w in label_word.split(",") if w and label_word != "-"]
    out_dir = Path(out_word.partition("=")[2]).resolve()
    run_dir = out_dir.parent
    os.environ.setdefault(OUT_DIR_VARIABLE, str(out_dir))
    try:
        config = read_config(run_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        config_file = out_dir / CONFIG_FILE
        config_file.write_text(json.dumps(config, indent=1) + "\n")
        status, metrics = run_script(script, config_file, labels)
        if status != 0:
            return status if status > 0 else 128 - status
        (out_dir / summary_file).write_text(summary_text(metrics))
    except RunnerError as exc:
        print(f"hpsearch: {exc}", file=sys.stderr)
        leave_reason(run_dir, str(exc))
        return exc.status
    except OSError as exc:
        print(f"hpsearch: cannot run {script}: {exc}", file=sys.stderr)
        leave_reason(run_dir, f"cannot run {script}: {exc.strerror}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
