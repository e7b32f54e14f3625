"""Search files and samplers through the real CLI: kill -9 at several moments and resume
(nothing runs twice, the trial count is exact, and with one run at a time the sequence is
the uninterrupted one), multi-objective results, dry runs, one-line errors.
"""

from __future__ import annotations

import importlib.util
import signal

import pytest
from conftest import (
    children_running,
    pid_alive,
    run_hpsearch,
    start_hpsearch,
    wait_for,
    write_search,
)

from hpsearch.engine.journal import replay

SEARCH = """\
script: sim.py
summary_file: perf.txt
metrics: [acc, loss]
objective: {objective}
direction: {direction}
algorithm: {algorithm}
algorithm_options: {options}
num_trials: {trials}
seed: 5
parameters:
  x: {{method: uniform, low: -2.0, high: 3.0}}
  sleep: {{method: quniform, low: 0.0, high: 0.2, q: 0.1}}
  mode: [ok]
"""


def search_file(tmp_path, algorithm, trials=10, objective="loss", direction="minimize",
                options="{}"):
    s = write_search(tmp_path, {"x": [0]})
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH.format(algorithm=algorithm, trials=trials, objective=objective,
                                  direction=direction, options=options))
    return s, path


def args(s, path, out_dir, *extra):
    return [f"--search_file={path}", "--run_cwd=proj", f"--out_dir={out_dir}",
            "--visible_gpus=-1", *extra]


def sequence(out_dir):
    """The configurations by trial, as the journal holds them (compacted or not)."""
    runs = replay(out_dir / "journal.jsonl").runs.values()
    return [s.config for s in sorted(runs, key=lambda s: s.trial)]


HAVE_GP = all(importlib.util.find_spec(m) for m in ("torch", "scipy"))


@pytest.mark.parametrize("algorithm, options", [
    ("random", "{}"), ("tpe", "{n_startup_trials: 3}"),
    pytest.param("gp", "{n_startup_trials: 3}", marks=pytest.mark.skipif(
        not HAVE_GP, reason="gp needs torch and scipy (pip install 'hpsearch[gp]')"))])
def test_kill_9_at_several_moments_resumes_the_same_sequence(tmp_path, procs, algorithm,
                                                             options):
    s, path = search_file(tmp_path, algorithm, trials=10, options=options)
    whole = tmp_path / "whole"
    rc, _, err = run_hpsearch(args(s, path, whole, "--num_jobs=1"), tmp_path, timeout=120)
    assert rc == 0, err
    expected = sequence(whole)
    assert len(expected) == 10
    broken = tmp_path / "broken"
    ends = 0
    for kill_after in (2, 5, 8):
        driver = start_hpsearch(args(s, path, broken, "--num_jobs=1"), tmp_path)
        procs.append(driver)

        def ended(n=kill_after):
            journal = broken / "journal.jsonl"
            return journal.exists() and journal.read_text().count('"ev":"end"') >= n

        wait_for(ended, timeout=60, what=f"{kill_after} runs ended")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        ends = kill_after
    rc, _, err = run_hpsearch(args(s, path, broken, "--num_jobs=1"), tmp_path, timeout=120)
    assert rc == 0, err
    assert ends == 8
    assert sequence(broken) == expected  # exactly the uninterrupted proposals
    # 10 runs of each search (the sim logs every start), none twice
    assert sum(s.starts().values()) == 20


def test_parallel_tpe_resume_runs_nothing_twice_and_the_count_is_exact(tmp_path, procs):
    s, path = search_file(tmp_path, "tpe", trials=12, options="{n_startup_trials: 2}")
    out = tmp_path / "out"
    driver = start_hpsearch(args(s, path, out, "--num_jobs=3"), tmp_path)
    procs.append(driver)
    wait_for(lambda: (out / "journal.jsonl").exists()
             and (out / "journal.jsonl").read_text().count('"ev":"end"') >= 4, timeout=60)
    (sampler,) = children_running(driver.pid, b"hpsearch.strategies.optuna.process")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    wait_for(lambda: not pid_alive(sampler), timeout=60, what="the sampler process ended")
    rc, _, err = run_hpsearch(args(s, path, out, "--num_jobs=3"), tmp_path, timeout=120)
    assert rc == 0, err
    assert sorted(s.trial for s in replay(out / "journal.jsonl").runs.values()) == list(
        range(12))
    assert set(s.starts().values()) == {1} and len(s.starts()) == 12


def test_multi_objective_marks_the_pareto_front(tmp_path):
    s, path = search_file(tmp_path, "nsga2", trials=8, objective="[acc, loss]",
                          direction="[maximize, maximize]",
                          options="{population_size: 4}")
    out = tmp_path / "out"
    rc, _, err = run_hpsearch(args(s, path, out, "--num_jobs=2"), tmp_path, timeout=120)
    assert rc == 0, err
    import csv

    with open(out / "search_results.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert len(rows) == 8 and {r["pareto"] for r in rows} <= {"0", "1"}
    # acc = x and loss = -x: maximising both, every run is on the front (none beats another
    # on both), unless two share x
    front = [r for r in rows if r["pareto"] == "1"]
    assert front
    rc, out_text, _ = run_hpsearch(["status", str(out)], tmp_path)
    assert f"Pareto front over acc, loss: {len(front)} run(s)" in out_text, out_text


def test_dry_run_of_a_sampler_prints_what_needs_no_results(tmp_path):
    s, path = search_file(tmp_path, "tpe", trials=20, options="{n_startup_trials: 4}")
    out = tmp_path / "out"
    rc, printed, err = run_hpsearch(args(s, path, out, "--dry_run"), tmp_path)
    assert rc == 0, err
    assert len(printed.splitlines()) == 4 and "depend on" in err, err
    assert not out.exists()
    rc, printed, err = run_hpsearch(args(s, path, out, "--dry_run", "--algorithm=random"),
                                    tmp_path)
    assert rc == 0 and len(printed.splitlines()) == 20, err


@pytest.mark.parametrize("text, words", [
    ("algorithm: tpe\n", "needs a number of trials"),
    ("parameters:\n  x: {method: nosuch, low: 0, high: 1}\n", "use one of categorical"),
    ("parameters:\n  x: {method: uniform, low: 2, high: 1}\n", "must be less than"),
    ("parameters: [unclosed\n", "line"),
    ("colour: red\n", "valid"),
])
def test_bad_search_files_are_one_line_and_write_nothing(tmp_path, text, words):
    s = write_search(tmp_path, {"x": [0]})
    path = tmp_path / "bad.yaml"
    path.write_text("script: sim.py\nmetrics: [acc]\n" + text + (
        "" if "parameters" in text else "parameters: {x: [1]}\n"))
    rc, _, err = run_hpsearch(args(s, path, s.out_dir), tmp_path)
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not s.out_dir.exists()


def test_a_sampler_search_refused_before_it_ran_says_one_line_and_nothing_after(tmp_path):
    """The sampler process starts with the strategy, before the search directory is
    checked: when the driver then refuses the directory and exits, the sampler (which
    inherited its stderr, so the call returns only once that ended too) ends quietly."""
    s, path = search_file(tmp_path, "tpe")
    rc, _, err = run_hpsearch(s.args("--visible_gpus=-1"), tmp_path)
    assert rc == 0, err
    rc, _, err = run_hpsearch(args(s, path, s.out_dir), tmp_path)
    assert rc == 2 and "holds a search whose grid module / search file is" in err, err
    assert len(err.strip().splitlines()) == 1, err

