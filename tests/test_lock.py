"""One driver per search directory (``hpsearch.engine.lock``): the lock is never observable empty,
an unreadable lock is held, only the owner removes it, a heartbeat keeps it fresh, and a
lock of another host goes stale after the grace period.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest
from conftest import run_hpsearch, start_hpsearch, wait_for, write_search

from hpsearch.engine.lock import LOCK_FILE, STALE_AFTER_SECONDS, DriverLock, read_holder
from hpsearch.errors import UsageError


def write_lock(folder, host, pid, age=0.0):
    path = folder / LOCK_FILE
    path.write_text(json.dumps({"host": host, "pid": pid, "token": "x", "t": 0}) + "\n")
    if age:
        now = time.time()
        os.utime(path, (now - age, now - age))
    return path


def test_two_drivers_started_together_one_runs(tmp_path):
    """20 tries: two drivers start at the same moment; exactly one runs, the other says
    who holds the search and exits 2 having written nothing."""
    s = write_search(tmp_path, {"x": [1], "hold": [True]})
    for attempt in range(20):
        out_dir = tmp_path / f"out{attempt}"
        args = s.args(out_dir=out_dir)
        s.hold.write_text("")  # the run holds its driver until the other driver has ended
        pair = [start_hpsearch(args, tmp_path) for _ in range(2)]
        try:
            wait_for(lambda pair=pair: any(p.poll() is not None for p in pair), timeout=60,
                     what="one of the two drivers ended")
        finally:
            s.hold.unlink()
        results = [(p.wait(timeout=60), p.stderr.read()) for p in pair]
        for p in pair:
            p.stderr.close()
            p.stdout.close()
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        refused = next(err for code, err in results if code == 2)
        assert "another hpsearch driver" in refused and len(refused.splitlines()) == 1
        starts = [ln for ln in (out_dir / "journal.jsonl").read_text().splitlines()
                  if '"ev":"start"' in ln]
        assert len(starts) == 1


def test_an_emptied_or_junk_lock_is_held_not_stale(tmp_path, procs):
    s = write_search(tmp_path, {"x": [1, 2], "hold": [True]})
    s.hold.write_text("")
    try:
        driver = start_hpsearch(s.args(), tmp_path)
        procs.append(driver)
        wait_for(lambda: len(s.starts()) >= 1, what="the first run started")
        lock = s.out_dir / LOCK_FILE
        lock.write_text("")  # emptied under a live driver
        rc, _, err = run_hpsearch(s.args(), tmp_path)
        assert rc == 2 and "holds no readable driver record" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        lock.write_text("}{ junk")
        rc, _, err = run_hpsearch(s.args(), tmp_path)
        assert rc == 2 and "delete that file" in err, err
        lock.write_bytes(b"\xff\xfe\x00 not UTF-8 \x80")
        rc, _, err = run_hpsearch(s.args(), tmp_path)
        assert rc == 2 and "holds no readable driver record" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    finally:
        s.hold.unlink()
    assert driver.wait(timeout=30) == 0


def test_a_driver_removes_only_its_own_lock(tmp_path, procs):
    s = write_search(tmp_path, {"x": [1], "hold": [True]})
    s.hold.write_text("")
    driver = start_hpsearch(s.args(), tmp_path)
    procs.append(driver)
    wait_for(lambda: len(s.starts()) == 1, what="the run started")
    lock = s.out_dir / LOCK_FILE
    # another driver took the lock over (say, after judging this one stale)
    os.replace(write_lock(tmp_path, "elsewhere", 4242), lock)
    s.hold.unlink()
    driver.wait(timeout=60)
    assert json.loads(lock.read_text())["host"] == "elsewhere"  # not deleted by the old owner


def test_heartbeat_keeps_the_lock_fresh_and_release_removes_it(tmp_path):
    lock = DriverLock(tmp_path, heartbeat=0.05)
    lock.acquire()
    path = tmp_path / LOCK_FILE
    first = path.stat().st_mtime
    wait_for(lambda: path.stat().st_mtime > first, timeout=5, what="a heartbeat")
    record = json.loads(path.read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    assert not lock.lost
    lock.release()
    assert not path.exists()


def test_a_lock_taken_over_is_noticed_by_its_old_owner(tmp_path):
    lock = DriverLock(tmp_path, heartbeat=0.05)
    lock.acquire()
    os.replace(write_lock(tmp_path / "..", "elsewhere", 1), tmp_path / LOCK_FILE)
    wait_for(lambda: lock.lost, timeout=5, what="the owner to notice")
    lock.release()
    assert (tmp_path / LOCK_FILE).exists()


def test_other_host_lock_is_held_until_its_heartbeat_is_old(tmp_path):
    write_lock(tmp_path, "elsewhere", 1, age=5)
    with pytest.raises(UsageError, match="elsewhere, last heartbeat"):
        DriverLock(tmp_path).acquire()
    write_lock(tmp_path, "elsewhere", 1, age=STALE_AFTER_SECONDS + 30)
    lock = DriverLock(tmp_path)
    lock.acquire()  # a driver job killed at its walltime on another node: taken over
    holder = read_holder(tmp_path / LOCK_FILE)
    assert holder is not None and holder.pid == os.getpid()
    lock.release()


def test_same_host_lock_of_a_dead_or_reused_pid_is_stale(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])  # alive, but no hpsearch driver
    try:
        write_lock(tmp_path, socket.gethostname(), sleeper.pid)
        lock = DriverLock(tmp_path)
        lock.acquire()
        lock.release()
    finally:
        sleeper.kill()
        sleeper.wait()
    write_lock(tmp_path, socket.gethostname(), sleeper.pid)  # now dead
    lock = DriverLock(tmp_path)
    lock.acquire()
    lock.release()
