"""End to end: real ``hpsearch`` processes running a real stdlib sim."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import stat
import sys

import pytest
from conftest import pid_alive, run_hpsearch, start_hpsearch, wait_for, write_search


def test_console_script_and_module_by_dotted_name_run_cwd_and_path(tmp_path):
    assert shutil.which("hpsearch"), "install the package: pip install -e ."
    s = write_search(tmp_path, {"x": [1, 2]})
    (s.sim_dir / "__init__.py").write_text("")
    spellings = {"run_cwd": "hpconf", "cwd": "proj.hpconf", "path": "proj/hpconf.py"}
    lines = {}
    for console in (False, True):
        for how, module in spellings.items():
            out_dir = tmp_path / f"out_{how}_{console}"
            args = [f"--grid_module={module}", "--run_cwd=proj", f"--out_dir={out_dir}",
                    "--visible_gpus=-1", "--deterministic_search"]
            rc, out, err = run_hpsearch(args + ["--dry_run"], tmp_path, console=console)
            assert rc == 0, (how, console, err)
            lines[(how, console)] = [shlex.split(ln)[3:] for ln in out.splitlines()]
            assert not out_dir.exists()
    assert all(v == lines[("run_cwd", False)] for v in lines.values())
    # one real search through the console script
    rc, _, err = run_hpsearch(s.args(), tmp_path, console=True)
    assert rc == 0, err
    assert sorted(r["x"] for r in s.results()) == ["1", "2"]


def test_results_csv_and_run_directories(tmp_path):
    s = write_search(tmp_path, {"x": [0.5, -2.0, 1e-4, 3.0], "mode": ["ok"]})
    rc, _, err = run_hpsearch(s.args("--num_jobs=2"), tmp_path)
    assert rc == 0, err
    text = (s.out_dir / "search_results.csv").read_text()
    header = text.splitlines()[0].split(";")
    assert header[:5] == ["x", "mode", "acc", "loss", "finished"]
    for column in ("status", "attempts", "failure_reason", "wall_time", "run_dir"):
        assert column in header
    rows = s.results()
    assert len(rows) == 4
    assert [float(r["acc"]) for r in rows] == [3.0, 0.5, 0.0001, -2.0]  # numeric, descending
    assert all(r["status"] == "finished" and r["attempts"] == "1" for r in rows)
    for row in rows:
        run_dir = s.out_dir / "runs" / row["run_id"]
        assert row["run_dir"] == str(run_dir)
        for name in ("stdout.log", "stderr.log", "run.json", "command.sh", "exit_code",
                     "started_at"):
            assert (run_dir / name).is_file(), name
        assert "sim done" in (run_dir / "stdout.log").read_text()
        assert (run_dir / "exit_code").read_text().split()[0] == "0"
        record = json.loads((run_dir / "run.json").read_text())
        argv = json.loads((run_dir / "out" / "argv.json").read_text())
        assert record["argv"][2:] == argv
        assert shlex.split((run_dir / "command.sh").read_text().splitlines()[-1])[-len(
            argv):] == argv
        assert float(row["wall_time"]) > 0


def test_ascending_sort_and_failed_last(tmp_path):
    s = write_search(tmp_path, {"x": [1.0, -3.0, 2.0], "mode": ["ok", "exit", "nosummary",
                                                                 "unfinished", "truncated"]},
                     perf_key="loss", ascending=True)
    rc, _, err = run_hpsearch(s.args("--num_jobs=2"), tmp_path)
    assert rc == 1, err  # some runs failed, the driver went on to the end
    rows = s.results()
    assert len(rows) == 15
    ok = [r for r in rows if r["mode"] == "ok"]
    assert rows[:3] == ok
    assert [float(r["loss"]) for r in ok] == [-2.0, -1.0, 3.0]
    reasons = {r["mode"]: r["failure_reason"] for r in rows[3:]}
    assert all(r["status"] == "failed" for r in rows[3:])
    assert "exit status 3" in reasons["exit"]
    assert "missing" in reasons["nosummary"]
    assert "finished 0" in reasons["unfinished"]
    assert reasons["truncated"]


def test_retries(tmp_path):
    s = write_search(tmp_path, {"x": [1], "mode": ["flaky", "exit"]})
    rc, _, err = run_hpsearch(s.args("--retries=2"), tmp_path)
    assert rc == 1, err
    rows = {r["mode"]: r for r in s.results()}
    assert rows["flaky"]["status"] == "finished" and rows["flaky"]["attempts"] == "2"
    assert rows["exit"]["status"] == "failed" and rows["exit"]["attempts"] == "3"
    assert sorted(s.starts().values()) == [2, 3]


def test_max_failures_stops_the_search(tmp_path):
    s = write_search(tmp_path, {"x": list(range(8)), "mode": ["exit"]})
    rc, _, err = run_hpsearch(s.args("--max_failures=2", "--num_jobs=1"), tmp_path)
    assert rc == 3, err
    assert "max_failures" in err
    assert sum(s.starts().values()) == 2


def test_timeout_fails_the_run(tmp_path):
    s = write_search(tmp_path, {"x": [1], "sleep": [30, 0]})
    rc, _, err = run_hpsearch(s.args("--timeout=0.5", "--num_jobs=2"), tmp_path, timeout=20)
    assert rc == 1, err
    rows = {r["sleep"]: r for r in s.results()}
    assert rows["0"]["status"] == "finished"
    assert rows["30"]["status"] == "failed" and "timeout" in rows["30"]["failure_reason"]
    slow_pid = next(e["pid"] for e in s.events() if e["ev"] == "start" and "30" in e["key"])
    wait_for(lambda: not pid_alive(slow_pid), timeout=5, what="timed-out run gone")


@pytest.mark.parametrize("jobs", [1, 3])
def test_num_jobs_runs_that_many_at_once(tmp_path, jobs):
    s = write_search(tmp_path, {"x": list(range(4)), "sleep": [0.5]})
    rc, _, err = run_hpsearch(s.args(f"--num_jobs={jobs}"), tmp_path)
    assert rc == 0, err
    events = s.events()
    moments = sorted((e["t"], 1 if e["ev"] == "start" else -1) for e in events)
    running = peak = 0
    for _, step in moments:
        running += step
        peak = max(peak, running)
    assert peak == jobs


def test_num_jobs_defaults_to_the_cpus_this_process_may_use_and_says_so(tmp_path):
    cpus = len(os.sched_getaffinity(0))  # the driver inherits this process's mask
    s = write_search(tmp_path, {"x": list(range(cpus + 1)), "hold": [True]})
    s.hold.write_text("")
    driver = start_hpsearch(s.args(), tmp_path)
    try:  # the runs wait on HOLD: as many start as there are slots, then no more
        wait_for(lambda: sum(s.starts().values()) >= cpus, timeout=60, what="a run per CPU")
    finally:
        s.hold.unlink()
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, err
    plural = "" if cpus == 1 else "s"
    assert err.count("--num_jobs not given") == 1
    assert f"hpsearch: --num_jobs not given: {cpus} CPU slot{plural} (the CPUs this process " \
        "may use)" in err, err
    moments = sorted((e["t"], 1 if e["ev"] == "start" else -1) for e in s.events())
    running = peak = 0
    for _, step in moments:
        running += step
        peak = max(peak, running)
    assert peak == cpus
    rc, _, err = run_hpsearch(s.args("--num_jobs=1", out_dir=tmp_path / "one"), tmp_path)
    assert rc == 0 and "--num_jobs not given" not in err, err


def test_num_trials_is_num_searches(tmp_path):
    s = write_search(tmp_path, {"x": list(range(10))})
    picked = {}
    for flag in ("--num_trials", "--num_searches"):
        out_dir = tmp_path / flag
        rc, _, err = run_hpsearch(s.args(flag, "3", "--deterministic_search",
                                         out_dir=out_dir), tmp_path)
        assert rc == 0, err
        with open(out_dir / "search_results.csv", newline="") as f:
            picked[flag] = sorted((row["run_id"], row["x"], row["status"])
                                  for row in csv.DictReader(f, delimiter=";"))
    assert len(picked["--num_trials"]) == 3
    assert picked["--num_trials"] == picked["--num_searches"]


def test_dry_run_lines_split_back_to_exact_argv(tmp_path):
    tricky = ['"example string"', '""', "it's", "$(touch pwned)", "a;b|c", "'q'"]
    s = write_search(tmp_path, {"name": tricky, "flag": [True, False], "lr": [1e-4]})
    rc, out, err = run_hpsearch(s.args("--dry_run", "--deterministic_search"), tmp_path)
    assert rc == 0, err
    argvs = [shlex.split(ln) for ln in out.splitlines()]
    expected_names = ["example string", "", "it's", "$(touch pwned)", "a;b|c", "q"]
    assert len(argvs) == 12
    for i, argv in enumerate(argvs):
        assert argv[0] == sys.executable and argv[1] == "sim.py"
        assert argv[2] == f"--out_dir={s.out_dir}/runs/{argv[2].split('/')[-2]}/out"
        flag = ["--flag"] if i % 2 == 0 else []
        assert argv[3:] == [f"--name={expected_names[i // 2]}", *flag, "--lr=0.0001"]
    assert not s.out_dir.exists()
    # the real runs get exactly these argv lists
    rc, _, err = run_hpsearch(s.args("--deterministic_search", "--num_jobs=3"), tmp_path)
    assert rc == 0, err
    got = sorted(json.loads(p.read_text()) for p in s.out_dir.glob("runs/*/out/argv.json"))
    assert got == sorted(a[2:] for a in argvs)
    assert not (s.sim_dir / "pwned").exists()
    assert sorted(r["name"] for r in s.results()) == sorted(expected_names * 2)


def test_python_flag_chooses_interpreter(tmp_path):
    s = write_search(tmp_path, {"x": [1]})
    marker = tmp_path / "used"
    interp = tmp_path / "mypython"
    interp.write_text(f"#!/bin/sh\necho yes > {marker}\nexec {sys.executable} \"$@\"\n")
    interp.chmod(interp.stat().st_mode | stat.S_IXUSR)
    rc, out, err = run_hpsearch(s.args(f"--python={interp}", "--dry_run"), tmp_path)
    assert rc == 0 and shlex.split(out)[0] == str(interp)
    rc, _, err = run_hpsearch(s.args(f"--python={interp}"), tmp_path)
    assert rc == 0, err
    assert marker.read_text() == "yes\n"
    assert s.results()[0]["status"] == "finished"


def test_max_failures_stops_runs_in_flight(tmp_path):
    # x=1 fails after 0.5 s, while x=2 waits on the hold file
    conditions = [({"x": [2, 3, 4]}, {"mode": ["ok"], "hold": [True], "sleep": [0]})]
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "mode": ["exit"], "sleep": [0.5]},
                     conditions=conditions)
    s.hold.write_text("")
    try:
        rc, _, err = run_hpsearch(s.args("--max_failures=1", "--num_jobs=2",
                                         "--deterministic_search"), tmp_path, timeout=20)
    finally:
        s.hold.unlink()
    assert rc == 3, err
    held = [e["pid"] for e in s.events() if e["ev"] == "start" and "hold" in e["key"]]
    assert len(held) == 1
    wait_for(lambda: not pid_alive(held[0]), timeout=5, what="held run gone")
    assert sum(s.starts().values()) == 2


def test_results_read_by_pandas_as_hypnettorch_postprocessing_does(tmp_path):
    """hypnettorch's scripts read the table with ``pandas.read_csv(f, sep=';')``."""
    pandas = pytest.importorskip("pandas")
    s = write_search(tmp_path, {"x": [1e-3, -2.5, 7.0], "mode": ["ok"]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    table = pandas.read_csv(s.out_dir / "search_results.csv", sep=";")
    assert table["acc"].dtype.kind == "f"  # numbers stay numbers (hypnettorch: "1,3")
    assert table["acc"].tolist() == [7.0, 0.001, -2.5]
    assert table.sort_values("acc", ascending=False)["acc"].tolist() == [7.0, 0.001, -2.5]
