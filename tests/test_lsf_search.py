"""The LSF backend end to end: ``python -m hpsearch --run_cluster --scheduler=lsf``.

IBM Spectrum LSF is proprietary and cannot be installed here, so these tests put the
emulator of ``tests/lsf_emulator`` first on PATH: it really runs the jobs and speaks the
formats IBM documents (see its README.md for the documentation followed). Every call of
``bsub``/``bjobs``/``bkill``/``bparams`` is logged to ``calls.log`` in its state directory,
which is how these tests count scheduler calls.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    hpsearch_env,
    run_hpsearch,
    start_hpsearch,
    wait_for,
    write_search,
)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

from hpsearch.backends.cluster.scheduler import Task
from hpsearch.backends.lsf.backend import LsfBackend, _index_list, bkill, validate_lsf_options
from hpsearch.backends.lsf.parse import BJOBS_FORMAT, parse_bsub_job_id
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import cluster_settings, resources_of
from hpsearch.runs.files import write_run_record
from hpsearch.runs.model import Run

TRICKY = "it's \"q\" $HOME `x` a;b  c"


def calls(state: Path, tool: str | None = None) -> list[tuple[str, float, list[str]]]:
    """``(tool, epoch, argv)`` of every emulator call (of ``tool`` only when given)."""
    path = state / "calls.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        name, when, argv = line.split(" ", 2)
        if tool is None or name == tool:
            out.append((name, float(when), json.loads(argv)))
    return out


def lsf_args(search, *extra: str) -> list[str]:
    return [a for a in search.args(*extra) if a != "--visible_gpus=-1"] + [
        "--run_cluster", "--scheduler=lsf"]


def max_overlap(events: list[dict]) -> int:
    """The most sims running at one moment, from their own start/end log lines."""
    edges = sorted((e["t"], 1 if e["ev"] == "start" else -1) for e in events)
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def check_bjobs_rate(state: Path, started: float, ended: float) -> None:
    """At most about one bjobs per second of driver time, each asking about arrays only."""
    queries = calls(state, "bjobs")
    assert len(queries) <= 1 + (ended - started), (len(queries), ended - started)
    for _, _, argv in queries:
        assert argv[:4] == ["-a", "-noheader", "-o", BJOBS_FORMAT]
        assert all(a.isdigit() for a in argv[4:])  # array ids, one call for all of them


def test_array_with_parallel_limit_failure_and_quoting(tmp_path, lsf):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2, 3, 4, 5], "sleep": [0.6],
                                "mode": ["ok"], "v": [TRICKY]},
                     conditions=[({"x": [3]}, {"mode": ["exit"]})])
    start = time.time()
    rc, out, err = run_hpsearch(lsf_args(s, "--num_jobs=2"), tmp_path)
    wall = time.time() - start
    assert rc == 1, err  # a run failed; the driver went on to the end
    rows = {r["x"]: r for r in s.results()}
    assert {x: r["status"] for x, r in rows.items()} == {
        "1": "finished", "2": "finished", "3": "failed", "4": "finished", "5": "finished"}
    assert rows["3"]["failure_reason"] == "exit status 3"
    assert max_overlap(s.events()) == 2  # the %2 slot limit, and really parallel
    assert len(calls(lsf, "bsub")) == 1 and len(calls(lsf, "bparams")) == 1
    job_ids = sorted(r["job_id"] for r in rows.values())
    array = job_ids[0].split("[")[0]
    assert job_ids == [f"{array}[{i}]" for i in range(1, 6)]
    check_bjobs_rate(lsf, start, start + wall)
    for r in rows.values():
        argv = json.loads((Path(r["run_dir"]) / "out" / "argv.json").read_text())
        assert f"--v={TRICKY}" in argv
    logs = tmp_path / "out" / "lsf_logs"
    assert (logs / f"{array}.1.out").exists() and list((logs / "scripts").iterdir())


def test_runs_are_queued_at_submission_and_started_when_they_start(tmp_path, lsf):  # noqa: F811
    """Four runs in a ``%2`` array: four ``queued`` lines at submission; a ``started`` line
    for each when its ``started_at`` appears: two first, the other two only after a run
    ended and made room (each before its own end)."""
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "sleep": [1.5]})
    rc, _, err = run_hpsearch(lsf_args(s, "--num_jobs=2"), tmp_path)
    assert rc == 0, err
    said = [(m.group(2), m.group(1)) for line in err.splitlines() if (m := re.match(
        r"\S+ \S+ run ([0-9a-f]{12}) #\d+ (queued|started|finished)", line))]
    assert [word for word, _ in said[:4]] == ["queued"] * 4, err
    assert [word for word, _ in said[4:7]] == ["started", "started", "finished"], err
    assert sorted(word for word, _ in said[4:]) == ["finished"] * 4 + ["started"] * 4, err
    for run in {run for _, run in said}:
        assert said.index(("started", run)) < said.index(("finished", run)), err
    job_ids = {r["run_id"]: r["job_id"] for r in s.results()}
    for line in err.splitlines():
        m = re.search(r"run ([0-9a-f]{12}) #\d+ (queued|started) \(job (\S+), attempt 1\)",
                      line)
        assert m is None or m.group(3) == job_ids[m.group(1)], line


def test_run_limit_kill_is_term_runlimit(tmp_path, lsf, monkeypatch):  # noqa: F811
    # --num_hours=0.001 -> "#BSUB -W 0:01"; one emulated minute lasts 1 s
    s = write_search(tmp_path, {"x": [1, 2], "sleep": [30]})
    start = time.time()
    rc, _, err = run_hpsearch(lsf_args(s, "--num_hours=0.001"), tmp_path)
    assert rc == 1, err
    wall = time.time() - start
    assert wall < 20, err
    rows = s.results()
    assert [r["status"] for r in rows] == ["failed", "failed"], err
    assert {r["failure_reason"] for r in rows} == {"TERM_RUNLIMIT"}
    assert not [e for e in s.events() if e["ev"] == "end"]
    check_bjobs_rate(lsf, start, start + wall)
    assert calls(lsf, "bjobs")  # the end was learned from bjobs: no exit_code file


def test_cancel_uses_bkill(tmp_path, lsf, procs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2, 3], "hold": [True]})
    s.hold.write_text("")
    driver = start_hpsearch(lsf_args(s, "--num_jobs=2"), tmp_path)
    procs.append(driver)
    wait_for(lambda: len(s.starts()) == 2, what="two runs started")
    done = subprocess.run([sys.executable, "-m", "hpsearch", "cancel", str(s.out_dir)],
                          cwd=tmp_path, env=hpsearch_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cancelled 3 run(s)" in done.stdout
    driver.wait(timeout=30)
    kills = calls(lsf, "bkill")
    assert len(kills) == 1 and len(kills[0][2]) == 3
    array = kills[0][2][0].split("[")[0]
    assert sorted(kills[0][2]) == [f"{array}[{i}]" for i in (1, 2, 3)]
    wait_for(lambda: "RUN" not in subprocess.run(
        ["bjobs", "-a", "-noheader", "-o", "stat", array], capture_output=True,
        text=True, timeout=30).stdout, what="elements killed")
    answer = subprocess.run(["bjobs", "-a", "-noheader", "-o", "jobindex stat exit_reason",
                             array], capture_output=True, text=True, timeout=30)
    assert answer.stdout.split("\n")[:3] == [f"{i} EXIT TERM_OWNER" for i in (1, 2, 3)]
    assert not [e for e in s.events() if e["ev"] == "end"]  # never got to finish


def test_kill_9_then_resume_without_double_submission(tmp_path, lsf, procs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "sleep": [1.0]})
    args = lsf_args(s, "--num_jobs=2")
    driver = start_hpsearch(args, tmp_path)
    procs.append(driver)
    wait_for(lambda: len(s.starts()) >= 2, what="two runs started")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert len(calls(lsf, "bsub")) == 1
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    assert "reattaching to 4 run(s)" in err
    assert len(calls(lsf, "bsub")) == 1  # the resumed driver submitted nothing
    assert sorted(s.starts().values()) == [1, 1, 1, 1]  # each run started once
    assert [r["status"] for r in s.results()] == ["finished"] * 4


def test_arrays_split_by_max_array_size_and_dry_run(tmp_path, lsf, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LSF_EMULATOR_MAX_ARRAY", "2")
    s = write_search(tmp_path, {"x": [1, 2, 3, 4, 5]})
    rc, out, err = run_hpsearch(lsf_args(s, "--dry_run", "--num_jobs=3",
                                         "--lsf_queue=short", "--bsub_option=P=proj"),
                                tmp_path)
    assert rc == 0, err
    assert not s.out_dir.exists() and not calls(lsf, "bsub")
    assert out.count("#!/bin/sh") == 3
    assert [line for line in out.splitlines() if line.startswith("#BSUB -J")] == [
        '#BSUB -J "hps-out-KEY[1-2]%3"', '#BSUB -J "hps-out-KEY[1-2]%3"',
        '#BSUB -J "hps-out-KEY[1]%3"']
    assert "#BSUB -q short\n" in out and "#BSUB -P proj\n" in out
    rc, _, err = run_hpsearch(lsf_args(s), tmp_path)
    assert rc == 0, err
    assert len(calls(lsf, "bsub")) == 3
    ids = sorted(r["job_id"] for r in s.results())
    arrays = sorted({i.split("[")[0] for i in ids})
    assert len(arrays) == 3
    assert ids == sorted([f"{arrays[0]}[1]", f"{arrays[0]}[2]", f"{arrays[1]}[1]",
                          f"{arrays[1]}[2]", f"{arrays[2]}[1]"])


def test_wrap_script_runs_the_driver_under_bsub(tmp_path, lsf):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2]})
    done = subprocess.run([sys.executable, "-m", "hpsearch", "wrap", "--driver_hours=2",
                           *lsf_args(s, "--num_hours=1.5")], cwd=tmp_path,
                          env=hpsearch_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    # --driver_mem=8G (the default) in LSF's spelling of units
    assert "#BSUB -W 2:00\n" in script and '#BSUB -R "rusage[mem=8GB]"\n' in script
    assert "-gpu" not in script and "ngpus" not in script
    assert f"#BSUB -o {tmp_path}/hpsearch_driver.%J.out\n" in script
    assert "--num_hours=1.5" in script
    answer = subprocess.run(["bsub"], input=script, cwd=tmp_path, env=hpsearch_env(),
                            capture_output=True, text=True, timeout=30)  # bsub < script
    assert answer.returncode == 0, answer.stderr
    job = parse_bsub_job_id(answer.stdout)
    wait_for(lambda: subprocess.run(["bjobs", "-a", "-noheader", "-o", "stat", job],
                                    capture_output=True, text=True).stdout == "DONE\n",
             timeout=30, what="the wrapped driver finished")
    assert [r["status"] for r in s.results()] == ["finished", "finished"]
    assert len(calls(lsf, "bsub")) == 2  # the driver's job, then its array


def test_bad_lsf_flags_are_one_line_errors(tmp_path, lsf):  # noqa: F811
    s = write_search(tmp_path, {"x": [1]})
    for flag, words in (("--bsub_option=P=", "empty"),
                        ("--bsub_option=J=name", "sets -J itself"),
                        ("--bsub_option=not a key", "KEY=VALUE"),
                        ('--resources="rusage[mem="8000"]"', "quotes")):
        rc, _, err = run_hpsearch(lsf_args(s, flag), tmp_path)
        assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, (flag, err)
    assert not s.out_dir.exists() and not calls(lsf, "bsub")


# -- the backend on its own -----------------------------------------------------------------
def options(out_dir: Path, **kw) -> SearchOptions:
    return SearchOptions(out_dir=out_dir, run_cwd=out_dir, python=sys.executable,
                         run_cluster=True, scheduler="lsf", **kw)


def make_run(out_dir: Path, name: str, code: str, key: str = "k1", **flags: Any) -> Run:
    """A run of ``code``, needing what ``options(out_dir, **flags)`` ask for."""
    argv = (sys.executable, "-c", code)
    run_dir = out_dir / "runs" / name
    write_run_record(run_dir, {"run_id": name}, argv, out_dir, {})
    return Run(name, 0, {}, argv, out_dir, run_dir, run_dir / "out", launch=key,
               resources=resources_of(options(out_dir, **flags)))


def test_render_maps_flags_to_bsub_directives(tmp_path, lsf):  # noqa: F811
    flags = {"num_jobs": 4, "num_hours": 0.1, "lsf_queue": "gpu",
             "lsf_gpu": "num=1:mode=exclusive_process", "bsub_options": ("-P=my proj", "x")}
    backend = LsfBackend(*cluster_settings(options(tmp_path, **flags)))
    run = make_run(tmp_path, "a", "pass", **flags)
    script = backend.render_array([Task(0, run), Task(1, run)], "hps-my search", 4)
    head = [line for line in script.splitlines() if line.startswith("#BSUB")]
    assert head == ['#BSUB -J "hps-my_search[1-2]%4"',
                    f"#BSUB -o {tmp_path.resolve()}/lsf_logs/%J.%I.out",
                    f"#BSUB -e {tmp_path.resolve()}/lsf_logs/%J.%I.err",
                    "#BSUB -n 1", "#BSUB -W 0:06",  # 0.1 h rounds to 6 minutes, not 7
                    '#BSUB -R "rusage[mem=8000, ngpus_excl_p=1]"', "#BSUB -q gpu",
                    "#BSUB -gpu num=1:mode=exclusive_process", "#BSUB -P 'my proj'",
                    "#BSUB -x"]
    assert backend.task_job_id("77", 0) == "77[1]"
    assert _index_list([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    empty = LsfBackend(*cluster_settings(options(tmp_path, resources="", num_hours=30)))
    run = make_run(tmp_path, "a", "pass", resources="", num_hours=30)
    script = empty.render_array([Task(0, run)], "n", 8)
    assert "-R" not in script and "-q" not in script and "#BSUB -W 30:00" in script


@pytest.mark.parametrize("kw, words", [
    ({"bsub_options": ("P=",)}, "empty"), ({"bsub_options": ("o=x",)}, "-o itself"),
    ({"bsub_options": ("1x",)}, "KEY=VALUE"), ({"bsub_options": ("P=a\nb",)}, "spans"),
    ({"resources": "rusage[mem=1]\nx"}, "newline"), ({"lsf_queue": " "}, "empty")])
def test_validate_rejects_bad_values(tmp_path, kw, words):
    with pytest.raises(ValueError, match=words):
        validate_lsf_options(options(tmp_path, **kw))


def test_one_bjobs_per_poll_and_limits(tmp_path, lsf, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LSF_EMULATOR_MAX_ARRAY", "3")
    # -W 0:02: 2 s
    backend = LsfBackend(*cluster_settings(options(tmp_path, num_jobs=8, num_hours=0.02)))
    runs = [make_run(tmp_path, f"r{i}", f"import time; time.sleep({1.4 if i == 0 else 0.5})",
                     key="k1" if i < 3 else "k2", num_hours=0.02) for i in range(4)]
    runs.append(make_run(tmp_path, "slow", "import time; time.sleep(60)", key="k2",
                         num_hours=0.02))
    assert backend.room() == 3  # one array per launch, at most MAX_JOB_ARRAY_SIZE
    submitted = backend.submit(runs[:3], "k1")
    submitted.update(backend.submit(runs[3:], "k2"))
    assert backend.limits() == (3, 10000) and backend.calls.submits == 2
    assert len({j.split("[")[0] for j in submitted.values()}) == 2
    ended = {}
    start = time.monotonic()
    while len(ended) < 5:
        assert time.monotonic() - start < 30
        before = backend.calls.scheduler
        ended.update((e.run_id, e) for e in backend.poll())
        assert backend.calls.scheduler - before <= 1
        time.sleep(0.02)  # a driver polling far too eagerly
    assert backend.calls.scheduler <= 3 + (time.monotonic() - start)  # 2 bsub, ~1 bjobs/s
    assert len(calls(lsf, "bjobs")) + len(calls(lsf, "bsub")) == backend.calls.scheduler
    first = calls(lsf, "bjobs")[0][2]  # r0 (array 1) and slow (array 2) both running
    assert len(first) == 6 and first[4:] == sorted({j.split("[")[0] for j in submitted.values()})
    assert {r: (e.exit_code, e.reason) for r, e in ended.items()} == {
        **{f"r{i}": (0, None) for i in range(4)}, "slow": (None, "TERM_RUNLIMIT")}


def test_bkill_counts_and_tolerates_finished_jobs(tmp_path, lsf):  # noqa: F811
    backend = LsfBackend(*cluster_settings(options(tmp_path)))
    submitted = backend.submit([make_run(tmp_path, "a", "pass"),
                                make_run(tmp_path, "b", "import time; time.sleep(30)"),
                                make_run(tmp_path, "c", "import time; time.sleep(30)")], "k1")
    # its job is over once the emulator says so (its exit_code is written a moment before)
    wait_for(lambda: subprocess.run(["bjobs", "-a", "-noheader", "-o", "stat", submitted["a"]],
                                    capture_output=True, text=True).stdout.split() == ["DONE"],
             timeout=60, what="run a's job done")
    assert bkill([submitted["a"], submitted["b"], "99999"]) == 1
    before = backend.calls.scheduler
    backend.cancel()
    assert backend.calls.scheduler == before + 1  # one bkill for every watched job
    assert not backend.job_ids()

    def reason(job: str) -> str:
        return subprocess.run(["bjobs", "-a", "-noheader", "-o", "stat exit_reason", job],
                              capture_output=True, text=True).stdout.split()[-1]

    wait_for(lambda: reason(submitted["c"]) == "TERM_OWNER", timeout=15, what="c killed")


def test_no_bparams_means_default_array_size(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no LSF commands at all
    assert LsfBackend(*cluster_settings(options(tmp_path))).limits() == (1000, 10000)

