"""Summary parsing and verdicts; journal replay with a torn tail; the driver lock."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess

import pytest

from hpsearch.errors import UsageError
from hpsearch.journal import LOCK_FILE, DriverLock, Journal, replay
from hpsearch.summary import judge_run, parse_summary_text

KEYS = ["acc", "loss", "finished"]


def test_parse_numbers():
    text = ("acc -1.5e-3\nloss 2E+2\nfinished 1\nother 7\nacc 99\n")
    assert parse_summary_text(text, KEYS) == {"acc": -0.0015, "loss": 200.0, "finished": 1.0}


def test_parse_nan_inf_and_lists():
    got = parse_summary_text("acc nan\nloss -inf\nfinished 1\nper_task [0.5, -1e-3]\n",
                             KEYS + ["per_task"])
    assert math.isnan(got["acc"]) and got["loss"] == -math.inf
    assert got["per_task"] == "0.5,-1e-3"


def judge(tmp_path, text, exit_code=0, parser=None):
    if text is not None:
        (tmp_path / "perf.txt").write_text(text)
    return judge_run(tmp_path, "perf.txt", KEYS, "acc", exit_code, parser, 3)


def test_verdicts(tmp_path):
    ok = judge(tmp_path, "acc 0.5\nloss 1\nfinished 1\n")
    assert ok.failure is None and ok.metrics["acc"] == 0.5
    assert "missing" in judge(tmp_path / "nope", None).failure
    assert "finished 0" in judge(tmp_path, "acc 0.5\nloss 1\nfinished 0\n").failure
    assert "finished" in judge(tmp_path, "acc 0.5\nloss 1\n").failure
    assert "loss" in judge(tmp_path, "acc 0.5\nfinished 1\n").failure
    assert judge(tmp_path, "acc 0.").failure is not None  # truncated mid-write
    assert "exit status 3" in judge(tmp_path, "acc 0.5\nloss 1\nfinished 1\n", 3).failure


def test_custom_parser_hypnettorch_shape(tmp_path):
    seen = []

    def parser(out_dir, run_index):
        seen.append((out_dir, run_index))
        return {"acc": [0.75], "loss": ["-2e-3"], "finished": [1]}

    verdict = judge(tmp_path, None, parser=parser)
    assert verdict.failure is None
    assert verdict.metrics == {"acc": 0.75, "loss": -0.002, "finished": 1.0}
    assert seen == [(str(tmp_path), 3)]

    def broken(out_dir, run_index):
        raise RuntimeError("boom")

    assert "boom" in judge(tmp_path, None, parser=broken).failure


def test_journal_replay_ignores_and_cuts_torn_tail(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append("submit", run="r1", index=0, config={"a": 1}, job="j1", attempt=1)
    journal.append("submit", run="r2", index=1, config={"a": 2}, job="j2", attempt=1)
    journal.append("end", run="r1", status="finished", exit=0, reason=None,
                   metrics={"acc": 0.5}, wall=1.0, extra={})
    journal.close()
    with open(path, "ab") as f:
        f.write(b'{"ev": "end", "run": "r2", "status": "fin')  # kill -9 mid-write
    states = replay(path)
    assert states["r1"].status == "finished" and states["r1"].metrics == {"acc": 0.5}
    assert states["r2"].status == "running" and states["r2"].job_id == "j2"

    journal = Journal(path)  # the next driver
    journal.append("end", run="r2", status="failed", exit=1, reason="exit status 1",
                   metrics={}, wall=None, extra={})
    journal.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(ln)["ev"] for ln in lines[:-1]] == ["submit", "submit", "end", "end"]
    assert replay(path)["r2"].status == "failed"


def test_lock_refuses_live_driver(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / LOCK_FILE).write_text(json.dumps(
            {"host": socket.gethostname(), "pid": sleeper.pid, "t": 0}))
        with pytest.raises(UsageError, match=f"pid {sleeper.pid}"):
            DriverLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    # the same lock, now stale: taken over
    lock = DriverLock(tmp_path)
    lock.acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_lock_of_other_host_is_refused(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": "elsewhere", "pid": 1, "t": 0}))
    with pytest.raises(UsageError, match="elsewhere"):
        DriverLock(tmp_path).acquire()
