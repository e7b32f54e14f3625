"""Progress output: plain lines off a terminal, a redrawn live line on one (a real pty)."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import time

import pytest
from conftest import hpsearch_cmd, hpsearch_env, run_hpsearch, write_search

from hpsearch.engine import progress as progress_module
from hpsearch.engine.progress import Counts, Progress

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d run [0-9a-f]{12} #\d+ "
                  r"(started \(job .+, attempt 1\)|finished acc=\S+ \[done \d, running \d, "
                  r"failed 0\])$")


def test_plain_lines_off_a_terminal(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2, 3]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if not ln.startswith("hpsearch: ")]
    run_lines, final = lines[:-1], lines[-1]
    assert len(run_lines) == 6, err  # one per state change: 3 starts, 3 ends
    assert all(LINE.match(ln) for ln in run_lines), err
    assert run_lines[-1].endswith("[done 3, running 0, failed 0]")
    assert re.search(r" done 3/3  running 0  failed 0  pending 0  best acc=3$", final), err
    assert "\r" not in err and "\x1b" not in err


def test_live_line_on_a_terminal(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "sleep": [0.3]})
    master, slave = pty.openpty()
    proc = subprocess.Popen(hpsearch_cmd(s.args()), cwd=tmp_path, env=hpsearch_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=30) == 0
    text = b"".join(chunks).decode()
    redraws = text.count("\r\x1b[2Khpsearch  done ")
    assert redraws >= 4, text
    assert "done 4/4" in text and "best acc=4" in text
    assert not re.search(r"\d\d:\d\d:\d\d run [0-9a-f]{12}", text)  # no plain log lines


ESC_SIM = r'''
import os, sys
cfg = dict(a[2:].split("=", 1) for a in sys.argv[1:])
if cfg["x"] == "bad":
    sys.stderr.write("\x1b[2J\x1b]0;pwned\x07\x1b[31mboom\x1b[0m\n")
    sys.exit(1)
os.makedirs(cfg["out_dir"], exist_ok=True)
with open(os.path.join(cfg["out_dir"], "perf.txt"), "w") as f:
    f.write("acc 1\nloss 0\nfinished 1\n")
'''


def test_control_characters_a_run_wrote_are_shown_escaped(tmp_path):
    """A failed run's stderr echoed by the driver, and a value shown by ``hpsearch status``,
    reach the terminal with ESC and BEL as visible escapes, never as terminal commands."""
    s = write_search(tmp_path, {"x": ["bad", "\x1b[31mred"]})
    (s.sim_dir / "sim.py").write_text(ESC_SIM)
    rc, _, err = run_hpsearch(s.args("--fail_fast=0"), tmp_path)
    assert rc == 1, err  # one run failed
    assert "\\x1b[2J\\x1b]0;pwned\\x07\\x1b[31mboom\\x1b[0m" in err, err
    assert "\x1b" not in err and "\x07" not in err, err
    rc, out, err = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert rc == 0, err
    assert "x=\\x1b[31mred" in out and "\x1b" not in out, out


class FakeTime:
    """The clock :mod:`hpsearch.engine.progress` reads, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    strftime = staticmethod(time.strftime)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(progress_module, "time", fake)
    return fake


def eta_of(progress: Progress) -> str | None:
    found = re.search(r"ETA (\S+)", progress.summary())
    return found.group(1) if found else None


def test_the_eta_counts_down_while_nothing_ends_and_is_gone_after_a_stop(clock):
    """10 runs, 2 at once, the first ends after 60 s: 9 left x 60 s / 2 = 4m30s; 7 s later
    with nothing ended it reads 4m23s (the elapsed time no longer makes it climb); near
    zero it reads ``soon``; a stop (fail-fast, Ctrl-C) leaves no ETA, nor does the final
    line."""
    p = Progress("acc", False, stream=io.StringIO(), live=False)
    p.set_counts(Counts(running=2, total=10))
    assert eta_of(p) is None  # nothing ended: no guess
    clock.now += 60
    p.set_counts(Counts(finished=1, running=1, total=10))
    p.event("run a #0 finished acc=1", ended=True, duration=60.0)
    assert eta_of(p) == "4m30s"
    for _ in range(3):
        clock.now += 7
        p.draw()
    assert eta_of(p) == "4m09s"
    clock.now += 300
    assert eta_of(p) == "soon"
    p.set_counts(Counts(finished=2, running=2, total=10))
    p.event("run b #1 finished acc=1", ended=True, duration=30.0)
    assert eta_of(p) == "3m00s"  # 8 left x 45 s / 2
    p.stop()
    assert eta_of(p) is None
    p.finish()
    assert "ETA" not in p.stream.getvalue()


def test_no_done_0_of_0_while_the_total_is_unknown():
    p = Progress("acc", False, stream=io.StringIO(), live=False)
    assert p.summary().startswith("done 0  running 0  failed 0"), p.summary()
    assert "/0" not in p.summary() and "pending" not in p.summary()
    p.set_counts(Counts(finished=1, running=3))  # runs, but still no total (a generator)
    assert p.summary().startswith("done 1  running 3  failed 0"), p.summary()
    assert "/" not in p.summary() and "pending" not in p.summary()
    p.set_counts(Counts(running=2, total=12))
    assert p.summary().startswith("done 0/12  running 2  failed 0  pending 10"), p.summary()


def test_a_fail_fast_stop_leaves_no_eta_in_the_last_line(tmp_path):
    s = write_search(tmp_path, {"x": list(range(12)), "mode": ["exit"]})
    rc, _, err = run_hpsearch(s.args("--num_jobs=2"), tmp_path)
    assert rc == 3, err  # stopped early: the first 5 failed alike
    final = [ln for ln in err.splitlines() if " done 0/12 " in ln]
    assert final and "ETA" not in final[-1], err
