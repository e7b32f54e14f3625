"""The run directory's lifecycle and what the journal is sure of, on local runs: earlier
attempts moved aside, intent journaled before launch (kill -9 mid-launch, a full disk, an
unwritable run directory), a truncated or deleted journal never re-runs a finished run,
stubborn sims are killed, values come back as they went out. The tests of the run contract
run twice (``PRELOADING``): runs as processes of their own, and forked from a zygote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import (
    GRID_MODULE,
    PRELOADING,
    check_preloaded,
    hpsearch_cmd,
    hpsearch_env,
    pid_alive,
    preload_flags,
    run_hpsearch,
    start_hpsearch,
    wait_for,
    write_search,
)

from hpsearch.runs.model import run_id_of


def journal_events(out_dir):
    path = out_dir / "journal.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.endswith("}")]


def assert_each_ran_once(search, n):
    starts = search.starts()
    assert len(starts) == n and set(starts.values()) == {1}, starts
    rows = search.results()
    assert len(rows) == n and {r["status"] for r in rows} == {"finished"}


@PRELOADING
def test_a_retry_moves_the_earlier_attempt_aside(tmp_path, preload):
    s = write_search(tmp_path, {"x": [1], "mode": ["flaky"]})
    rc, _, err = run_hpsearch(s.args("--retries=1", *preload_flags(preload)), tmp_path)
    assert rc == 0, err
    check_preloaded(s.out_dir, preload)
    (row,) = s.results()
    assert row["status"] == "finished" and row["attempts"] == "2"
    run_dir = s.out_dir / "runs" / row["run_id"]
    first = run_dir / "attempts" / "1"
    assert first.joinpath("exit_code").read_text().startswith("3 ")
    assert "launch=" in first.joinpath("started_at").read_text()
    assert first.joinpath("stderr.log").exists() and first.joinpath("stdout.log").exists()
    assert run_dir.joinpath("exit_code").read_text().startswith("0 ")
    assert json.loads(run_dir.joinpath("run.json").read_text())["attempt"] == 2
    keys = {run_dir.joinpath("exit_code").read_text().split()[1],
            first.joinpath("exit_code").read_text().split()[1]}
    assert len(keys) == 2  # each attempt's files carry their own launch key


@PRELOADING
@pytest.mark.parametrize("moment", ["launch", "submit"])
def test_kill_9_right_after_launch_with_40_slots_runs_nothing_twice(tmp_path, moment, preload):
    s = write_search(tmp_path, {"x": list(range(40)), "sleep": [1.0]})
    args = s.args("--num_jobs=40", *preload_flags(preload))
    driver = start_hpsearch(args, tmp_path)
    journal = s.out_dir / "journal.jsonl"
    wait_for(lambda: journal.exists() and f'"ev":"{moment}"' in journal.read_text(),
             timeout=30, poll=0.001, what=f"the {moment} event")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    rc, _, err = run_hpsearch(args, tmp_path, timeout=120)
    assert rc == 0, err
    assert_each_ran_once(s, 40)
    check_preloaded(s.out_dir, preload, every=False)


def limited_run(args, cwd, max_bytes):
    """``python -m hpsearch ARGS`` with files limited to ``max_bytes`` (a full disk)."""
    code = textwrap.dedent(f"""
        import resource, runpy, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({max_bytes}, {max_bytes}))
        sys.argv = ["hpsearch", *{args!r}]
        runpy.run_module("hpsearch", run_name="__main__")
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=hpsearch_env(),
                          capture_output=True, text=True, timeout=120)


def test_a_full_disk_stops_the_search_in_one_line_and_loses_nothing(tmp_path):
    s = write_search(tmp_path, {"x": list(range(30))})
    args = s.args("--num_jobs=3")
    done = limited_run(args, tmp_path, 6000)  # the journal outgrows 6 kB mid-search
    assert done.returncode == 1, done.stderr
    error = [ln for ln in done.stderr.splitlines() if ln.startswith("hpsearch: error:")]
    assert len(error) == 1 and "journal" in error[0] and "resume" in error[0], done.stderr
    assert "Traceback" not in done.stderr
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    assert_each_ran_once(s, 30)


#: A sim that, while the file named in its argv exists, fills the disk as it ends: its run
#: directory's ``exit_code`` becomes /dev/full (every write to it fails: ENOSPC), and it
#: cannot write its summary either (exit 1). Each start is logged to ``<that file>.log``.
FILLS_DISK = '''
import os, sys
full = sys.argv[1]
cfg = dict(a[2:].partition("=")[::2] for a in sys.argv[2:])
with open(full + ".log", "a") as f:
    f.write(cfg["x"] + "\\n")
os.makedirs(cfg["out_dir"], exist_ok=True)
if os.path.exists(full):
    os.symlink("/dev/full", os.path.join(os.path.dirname(cfg["out_dir"]), "exit_code"))
    sys.exit("OSError: [Errno 28] No space left on device")
with open(os.path.join(cfg["out_dir"], "perf.txt"), "w") as f:
    f.write(f"acc {cfg['x']}\\nfinished 1\\n")
'''


@PRELOADING
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_run_whose_exit_status_cannot_be_written_is_not_failed_and_runs_again(tmp_path,
                                                                                 preload):
    full = tmp_path / "FULL"
    s = write_search(tmp_path, {}, module_text=GRID_MODULE.format(
        grid={"x": [1, 2, 3]}, conditions=[], keywords=["acc", "finished"], perf_key="acc",
        ascending=False).replace('"sim.py"', f'"fills_disk.py {full}"'))
    (s.sim_dir / "fills_disk.py").write_text(FILLS_DISK)
    full.write_text("")
    rc, _, err = run_hpsearch(s.args("--num_jobs=1", *preload_flags(preload)),
                              tmp_path)  # one run meets the full disk
    assert rc == 1, err
    check_preloaded(s.out_dir, preload)
    assert err.count("hpsearch: error:") == 1 and "exit_code" in err and "resume" in err, err
    assert "printf" not in err and "I/O error" not in err and "Traceback" not in err, err
    rc, out, err = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert rc == 0 and "0 failed" in out and "0 finished" in out, out + err
    full.unlink()  # space freed: what the full disk left is an empty exit_code
    for link in s.out_dir.glob("runs/*/exit_code"):
        link.unlink()
        link.write_text("")
    rc, _, err = run_hpsearch(s.args(*preload_flags(preload)), tmp_path)
    assert rc == 0, err
    rows = s.results()
    assert len(rows) == 3 and {r["status"] for r in rows} == {"finished"}, rows
    starts = (tmp_path / "FULL.log").read_text().split()
    assert len(starts) == 4 and len(set(starts)) == 3  # the one that hit the full disk: again


def test_an_unwritable_run_directory_stops_the_search_resumably(tmp_path):
    s = write_search(tmp_path, {"x": [1]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    (s.sim_dir / "hpconf.py").write_text((s.sim_dir / "hpconf.py").read_text().replace(
        "'x': [1]", "'x': [1, 2, 3]"))
    blocked = s.out_dir / "runs" / run_id_of({"x": 2})
    blocked.write_text("a file where the run's folder should be\n")
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 1, err
    assert err.count("hpsearch: error:") == 1 and "cannot write the run directory" in err
    assert "Traceback" not in err
    blocked.unlink()
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    assert_each_ran_once(s, 3)


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_truncated_or_deleted_journal_never_reruns_finished_runs(tmp_path, damage):
    s = write_search(tmp_path, {"x": list(range(12))})
    args = s.args("--num_jobs=3")
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    journal = s.out_dir / "journal.jsonl"
    if damage == "truncated":
        data = journal.read_bytes()
        journal.write_bytes(data[:len(data) // 2 + 7])  # cut mid-line
    else:
        journal.unlink()
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    assert "adopted" in err
    assert_each_ran_once(s, 12)
    rc, out, err = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert rc == 0 and "12 finished" in out, out + err


def test_garbage_in_the_journal_is_reported_and_nothing_crashes(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2, 3]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    journal = s.out_dir / "journal.jsonl"
    lines = journal.read_text().splitlines()
    lines[2:2] = ["42", "null", '{"ev": "end", "run": "nosuch"}', "garbage{"]
    journal.write_text("\n".join(lines) + "\n")
    for command in (["status", str(s.out_dir)], ["collect", str(s.out_dir)], s.args()):
        rc, out, err = run_hpsearch(command, tmp_path)
        assert rc == 0, (command, err)
        assert "Traceback" not in err
        assert "line 3" in err and "line 6" in err, err
    assert_each_ran_once(s, 3)


STUBBORN = '''
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:  # a child the sim forked, just as stubborn
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(sys.argv[1] + ".child", "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)
    os._exit(0)
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
time.sleep(600)
'''


@PRELOADING
@pytest.mark.parametrize("how", ["ctrl_c", "cancel", "timeout"])
def test_a_sim_that_ignores_sigterm_is_killed_with_its_children(tmp_path, procs, how, preload):
    s = write_search(tmp_path, {"x": [1]}, module_text=GRID_MODULE.format(
        grid={"x": [1]}, conditions=[], keywords=["acc", "finished"], perf_key="acc",
        ascending=False).replace('"sim.py"', '"stubborn.py ' + str(tmp_path / "pid") + '"'))
    (s.sim_dir / "stubborn.py").write_text(STUBBORN)
    extra = ["--timeout=1"] if how == "timeout" else []
    driver = start_hpsearch(s.args(*extra, *preload_flags(preload)), tmp_path)
    procs.append(driver)
    pid_file, child_file = tmp_path / "pid", tmp_path / "pid.child"
    wait_for(lambda: pid_file.exists() and child_file.exists() and pid_file.read_text()
             and child_file.read_text(), what="the sim and its child")
    check_preloaded(s.out_dir, preload)
    pids = [int(pid_file.read_text()), int(child_file.read_text())]
    if how == "ctrl_c":
        driver.send_signal(signal.SIGINT)
    elif how == "cancel":
        done = subprocess.run(hpsearch_cmd(["cancel", str(s.out_dir)]), cwd=tmp_path,
                              env=hpsearch_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    rc = driver.wait(timeout=30)
    assert rc == {"ctrl_c": 130, "cancel": 143, "timeout": 1}[how]
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10,
             what="the sim and its child gone")
    if how == "timeout":
        (row,) = s.results()
        assert row["status"] == "failed" and "timeout after 1s" in row["failure_reason"]


VALUES_MODULE = '''
import numpy as np
grid = {"n": list(np.arange(3)), "f": [np.float32(0.1), np.float64(0.25)],
        "pair": [(1, 2)], "tags": [{"b", "a", "c"}]}
_SCRIPT_NAME = "sim.py"
_SUMMARY_FILENAME = "perf.txt"
_SUMMARY_KEYWORDS = ["acc", "loss", "finished"]
_PERFORMANCE_KEY = "acc"
'''


def test_values_json_cannot_hold_come_back_unchanged(tmp_path):
    pytest.importorskip("numpy")
    s = write_search(tmp_path, {}, module_text=VALUES_MODULE)
    runs = []
    for hash_seed in ("1", "2"):  # a set's order differs between these processes
        env = {**hpsearch_env(), "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(hpsearch_cmd(s.args("--num_jobs=2")), cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        runs.append(sum(s.starts().values()))
    assert runs == [6, 6]  # the second process re-ran nothing
    argvs = sorted(tuple(json.loads((s.out_dir / "runs" / r["run_id"] / "out" / "argv.json")
                                    .read_text())[1:]) for r in s.results())
    assert {a[0] for a in argvs} == {"--n=0", "--n=1", "--n=2"}
    assert {a[1] for a in argvs} == {"--f=0.1", "--f=0.25"}
    assert {a[2] for a in argvs} == {"--pair=(1, 2)"}
    assert len({a[3] for a in argvs}) == 1  # the set, as first rendered, every time


def test_resume_with_an_equal_grid_in_other_spellings_reruns_nothing(tmp_path):
    s = write_search(tmp_path, {"x": [0, 1]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    (s.sim_dir / "hpconf.py").write_text((s.sim_dir / "hpconf.py").read_text().replace(
        "'x': [0, 1]", "'x': [0.0, 1.0, 2]"))
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    assert sorted(s.starts().values()) == [1, 1, 1]  # only x=2 is new
