"""``hpsearch collect`` and ``hpsearch status`` on real search directories."""

from __future__ import annotations

import re
import signal
import time

from conftest import count_ev, run_hpsearch, start_hpsearch, wait_for, write_search


def key_rows(rows):
    return sorted((r["run_id"], r["status"], r["acc"], r["x"]) for r in rows)


def test_collect_rebuilds_after_journal_deleted(tmp_path):
    s = write_search(tmp_path, {"x": [1, 3, 2], "mode": ["ok", "exit"]})
    rc, _, err = run_hpsearch(s.args("--num_jobs=2"), tmp_path)
    assert rc == 1, err
    before = s.results()
    (s.out_dir / "journal.jsonl").unlink()
    (s.out_dir / "search_results.csv").unlink()
    rc, out, err = run_hpsearch(["collect", str(s.out_dir)], tmp_path)
    assert rc == 0, err
    assert "6 runs" in out
    after = s.results()
    assert key_rows(after) == key_rows(before)
    assert [r["x"] for r in after if r["status"] == "finished"] == ["3", "2", "1"]
    assert [r["status"] for r in after][3:] == ["failed"] * 3


def test_collect_and_status_of_killed_driver(tmp_path, procs):
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "hold": [True]})
    s.hold.write_text("")
    try:
        driver = start_hpsearch(s.args("--num_jobs=2"), tmp_path)
        procs.append(driver)
        wait_for(lambda: count_ev(s, "start") >= 2, what="two runs started")
        time.sleep(0.3)  # the journal is flushed once per loop iteration
        rc, out, err = run_hpsearch(["status", str(s.out_dir)], tmp_path)
        assert rc == 0, err
        assert "2 running" in out and "2 pending" in out and f"pid {driver.pid}" in out
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        s.hold.unlink()
    wait_for(lambda: count_ev(s, "end") >= 2, what="orphaned runs ended")
    wait_for(lambda: len(list(s.out_dir.glob("runs/*/exit_code"))) == 2, what="exit codes")
    rc, out, err = run_hpsearch(["collect", str(s.out_dir)], tmp_path)
    assert rc == 0, err
    rows = s.results()
    assert len(rows) == 2 and all(r["status"] == "finished" for r in rows)
    assert [r["x"] for r in rows] == sorted((r["x"] for r in rows), reverse=True)


def counts_said(line: str) -> dict[str, int]:
    """``3 finished, 1 failed, 0 running`` -> {"finished": 3, "failed": 1, "running": 0}."""
    return {word: int(n) for n, word in re.findall(r"(\d+) (finished|failed|running)", line)}


def test_status_counts_equal_collects_after_kill_9_while_runs_end(tmp_path, procs):
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "mode": ["ok"], "hold": [True]},
                     conditions=[({"x": [2]}, {"mode": ["exit"]})])
    s.hold.write_text("")
    try:
        driver = start_hpsearch(s.args("--num_jobs=4"), tmp_path)
        procs.append(driver)
        wait_for(lambda: "4 running" in run_hpsearch(["status", str(s.out_dir)], tmp_path)[1],
                 timeout=60, what="the journal says three runs run")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        s.hold.unlink()
    wait_for(lambda: len(list(s.out_dir.glob("runs/*/exit_code"))) == 4, timeout=60,
             what="the orphaned runs ended")
    rc, status, err = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert rc == 0, err
    rc, collected, err = run_hpsearch(["collect", str(s.out_dir)], tmp_path)
    assert rc == 0, err
    said, rows = counts_said(status.splitlines()[0]), s.results()
    for word in ("finished", "failed", "running"):
        assert said.get(word, 0) == sum(r["status"] == word for r in rows), (status, collected)
    assert said == {"finished": 3, "failed": 1, "running": 0}, status


def test_status_best_runs(tmp_path):
    s = write_search(tmp_path, {"x": [1, 5, 3]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    rc, out, err = run_hpsearch(["status", str(s.out_dir), "--top=2"], tmp_path)
    assert rc == 0, err
    lines = out.splitlines()
    assert "3 finished" in lines[0] and "0 failed" in lines[0] and "no driver" in lines[0]
    assert "acc=5" in lines[2] and "acc=3" in lines[3] and len(lines) == 4


FAILING_SIM = r'''
import os, sys
cfg = dict(a[2:].split("=", 1) for a in sys.argv[1:])
if cfg["x"] == "oom":
    sys.stderr.write("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    sys.exit(1)
if float(cfg["x"]) < 0:
    print("loading data", file=sys.stderr)
    raise ValueError(f"lr must be positive, got {cfg['x']}")
os.makedirs(cfg["out_dir"], exist_ok=True)
with open(os.path.join(cfg["out_dir"], "perf.txt"), "w") as f:
    f.write(f"acc {cfg['x']}\nloss 0\nfinished 1\n")
'''


def test_a_failed_script_s_reason_and_status_s_failures_by_reason(tmp_path):
    """The results say why a script failed (its exception, not only ``exit status 1``), and
    ``hpsearch status`` lists the failed runs' reasons with their counts, most common
    first (runs failing alike, numbers aside, are one line)."""
    s = write_search(tmp_path, {"x": [-1, 2, -3, "oom", -0.5]})
    (s.sim_dir / "sim.py").write_text(FAILING_SIM)
    rc, _, err = run_hpsearch(s.args("--fail_fast=0"), tmp_path)
    assert rc == 1, err
    reasons = {r["x"]: r["failure_reason"] for r in s.results()}
    assert reasons["-1"] == "exit status 1: ValueError: lr must be positive, got -1"
    assert reasons["oom"] == ("oom (exit status 1: torch.OutOfMemoryError: CUDA out of memory. "
                              "Tried to allocate 2.00 GiB)")
    assert reasons["2"] == ""
    rc, out, err = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert rc == 0, err
    lines = out.splitlines()
    at = lines.index("failed runs by reason, most common first:")
    assert lines[at + 1:at + 3] == [
        "  3 exit status 1: ValueError: lr must be positive, got #",
        "  1 oom (exit status 1: torch.OutOfMemoryError: CUDA out of memory. Tried to "
        "allocate 2.00 GiB)"], out


HYPNETTORCH_MODULE = """
grid = {"lr": [0.001, 0.01], "use_bn": [False, True], "name": ['"a b"']}
conditions = []
_SCRIPT_NAME = "train.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = ["acc_test", "finished"]
_OUT_ARG = "out_dir"
_SUMMARY_PARSER_HANDLE = None
_PERFORMANCE_KEY = None
_PERFORMANCE_SORT_ASC = False
_PERFORMANCE_EVAL_HANDLE = None
_ARGPARSE_HANDLE = None
"""


def test_collect_hypnettorch_layout(tmp_path):
    search = tmp_path / "out" / "search_2024-01-01_12-00-00"
    search.mkdir(parents=True)
    (search / "hpsearch_config_mine.py").write_text(HYPNETTORCH_MODULE)
    runs = [("0.001", True, "0.91", "1"), ("0.01", True, "0.95", "1"),
            ("0.001", False, "0.5", "0"), ("0.01", False, "-1e-3", "1")]
    for i, (lr, bn, acc, finished) in enumerate(runs):
        sim = search / f"sim_2024-01-01_12-00-0{i}_{i}"
        sim.mkdir()
        flag = " --use_bn" if bn else ""
        (sim / "hpsearch_command.sh").write_text(
            f"#!/bin/sh\npython3 train.py --out_dir={sim} --lr={lr}{flag} --name=\"a b\"\n")
        (sim / "performance_overview.txt").write_text(
            f"acc_test {acc}\nfinished {finished}\n")
    rc, out, err = run_hpsearch(["collect", str(search)], tmp_path)
    assert rc == 0, err
    import csv

    with open(search / "search_results.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    got = [(r["lr"], r["use_bn"], r["name"], r["acc_test"], r["status"]) for r in rows]
    assert got == [("0.01", "True", "a b", "0.95", "finished"),
                   ("0.001", "True", "a b", "0.91", "finished"),
                   ("0.01", "False", "a b", "-0.001", "finished"),
                   ("0.001", "False", "a b", "0.5", "failed")]
    assert rows[0]["run_dir"] == str(search / "sim_2024-01-01_12-00-01_1")
