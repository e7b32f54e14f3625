"""Resume after ``kill -9`` of the driver, one driver per search, SIGTERM/SIGINT; each run
contract test also with runs forked from a zygote (``PRELOADING``)."""

from __future__ import annotations

import signal
import time

import pytest
from conftest import (
    GRID_MODULE,
    PRELOADING,
    check_preloaded,
    pid_alive,
    preload_flags,
    run_hpsearch,
    start_hpsearch,
    wait_for,
    write_search,
)


def count(search, ev):
    return sum(1 for e in search.events() if e["ev"] == ev)


def assert_complete(search, n):
    rows = search.results()
    assert len(rows) == n
    assert len({r["run_id"] for r in rows}) == n
    assert all(r["status"] == "finished" for r in rows), rows


@PRELOADING
@pytest.mark.parametrize("moment", ["in_flight", "after_3_ended", "twice"])
def test_kill_9_then_resume(tmp_path, procs, moment, preload):
    s = write_search(tmp_path, {"x": list(range(8)), "sleep": [0.25]})
    args = s.args("--num_jobs=2", *preload_flags(preload))
    kills = 2 if moment == "twice" else 1
    ended_before = set()
    for k in range(kills):
        driver = start_hpsearch(args, tmp_path)
        procs.append(driver)
        if moment == "after_3_ended":
            wait_for(lambda: count(s, "end") >= 3, what="3 runs ended")
        else:
            target = count(s, "start") + 1
            wait_for(lambda t=target: count(s, "start") >= t, what="a run started")
            time.sleep(0.05 * k)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        ended_before |= {e["key"] for e in s.events() if e["ev"] == "end"}
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    assert_complete(s, 8)
    starts = s.starts()
    assert len(starts) == 8
    assert all(starts[key] == 1 for key in ended_before), starts  # never run again
    assert "reattaching" in err or moment == "after_3_ended"
    # running again does nothing more
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    assert s.starts() == starts
    assert_complete(s, 8)
    check_preloaded(s.out_dir, preload, every=False)


@PRELOADING
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_second_driver_refused_and_signal_stops_runs(tmp_path, procs, sig, preload):
    s = write_search(tmp_path, {"x": [1, 2, 3], "hold": [True]})
    s.hold.write_text("")
    try:
        args = s.args("--num_jobs=2", *preload_flags(preload))
        driver = start_hpsearch(args, tmp_path)
        procs.append(driver)
        wait_for(lambda: count(s, "start") >= 2, what="two runs started")
        files = sorted(p.name for p in s.out_dir.iterdir())

        rc, out, err = run_hpsearch(args, tmp_path)
        assert rc == 2
        assert err.startswith("hpsearch: error: ") and "another hpsearch driver" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert sorted(p.name for p in s.out_dir.iterdir()) == files

        pids = [e["pid"] for e in s.events() if e["ev"] == "start"]
        assert all(pid_alive(p) for p in pids)
        check_preloaded(s.out_dir, preload)
        driver.send_signal(sig)
        rc = driver.wait(timeout=15)
        assert rc != 0
        assert rc == 128 + sig
        wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=5, what="runs gone")
        assert count(s, "start") == 2  # stopped launching
        assert not (s.out_dir / ".hpsearch.lock").exists()
    finally:
        s.hold.unlink()
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    assert_complete(s, 3)


def test_resume_reruns_failed_runs_within_retries(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2], "mode": ["flaky", "ok"]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 1, err
    assert sum(s.starts().values()) == 4
    rc, _, err = run_hpsearch(s.args(), tmp_path)  # same budget: nothing to do
    assert rc == 1, err
    assert sum(s.starts().values()) == 4
    rc, _, err = run_hpsearch(s.args("--retries=1"), tmp_path)
    assert rc == 0, err
    assert sorted(s.starts().values()) == [1, 1, 2, 2]
    rows = s.results()
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    assert sorted(r["attempts"] for r in rows) == ["1", "1", "2", "2"]


#: A sim that writes its summary (finished 1), then tears down for minutes (CUDA, data
#: loaders) -- on its first start only; it logs each start to the file named in its argv.
TEARDOWN = '''
import os, sys, time
log = sys.argv[1]
cfg = dict(a[2:].partition("=")[::2] for a in sys.argv[2:])
first = not os.path.exists(log) or cfg["x"] not in open(log).read().split()
with open(log, "a") as f:
    f.write(cfg["x"] + "\\n")
os.makedirs(cfg["out_dir"], exist_ok=True)
with open(os.path.join(cfg["out_dir"], "perf.txt"), "w") as f:
    f.write(f"acc {cfg['x']}\\nfinished 1\\n")
if first:
    time.sleep(600)
'''


@PRELOADING
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "timeout"])
def test_a_run_stopped_in_its_teardown_after_its_summary_said_finished_is_finished(
        tmp_path, procs, stop, preload):
    log = tmp_path / "starts.txt"
    s = write_search(tmp_path, {}, module_text=GRID_MODULE.format(
        grid={"x": [1, 2, 3]}, conditions=[], keywords=["acc", "finished"], perf_key="acc",
        ascending=False).replace('"sim.py"', f'"teardown.py {log}"'))
    (s.sim_dir / "teardown.py").write_text(TEARDOWN)
    args = s.args("--num_jobs=3", *(["--timeout=10"] if stop == "timeout" else []),
                  *preload_flags(preload))
    driver = start_hpsearch(args, tmp_path)
    procs.append(driver)
    summaries = s.out_dir / "runs"
    wait_for(lambda: len(list(summaries.glob("*/out/perf.txt"))) == 3, timeout=60,
             what="three summaries written")
    if stop != "timeout":
        driver.send_signal(getattr(signal, stop))
    rc = driver.wait(timeout=60)
    _, err = driver.communicate()
    assert rc == (0 if stop == "timeout" else 128 + getattr(signal, stop)), err
    rows = s.results()
    assert len(rows) == 3 and {r["status"] for r in rows} == {"finished"}, rows
    check_preloaded(s.out_dir, preload)
    if stop == "timeout":
        assert "timeout after 10s" in err and "summary" in err, err
    rc, _, err = run_hpsearch(args, tmp_path)  # the same command: nothing to run again
    assert rc == 0, err
    assert sorted(log.read_text().split()) == ["1", "2", "3"]
