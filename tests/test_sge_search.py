"""Whole searches through the real CLI against the real single-node Grid Engine cell
(Debian 12's gridengine 8.1.9, started by scripts/sge/start.sh): the acceptance tests of the
Slurm backend, with ``--scheduler=sge``.

Every search is a real ``python -m hpsearch ... --run_cluster --scheduler=sge`` process
running the generic sim of ``conftest.py`` as array tasks. To count the scheduler commands,
``qsub``, ``qstat``, ``qdel``, ``qalter`` and ``qacct`` are wrapped: a directory put first on the
driver's PATH holds small scripts that append their argv to a log file and ``exec`` the real
tool, so Grid Engine still does all the work.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    CountedTools,
    Search,
    hpsearch_cmd,
    hpsearch_env,
    pid_alive,
    wait_for,
    write_search,
)
from sge_fixture import sge_cell  # noqa: F401  (fixture)
from test_cluster_guarantees import peak_concurrency
from test_early_stopping import Curves, assert_pruned_at_the_first_rung

from hpsearch.backends.sge import parse as gp

pytestmark = pytest.mark.usefixtures("sge_cell")

CLUSTER = ("--run_cluster", "--scheduler=sge", "--sge_gpus=0", "--sge_mem=500M")
TOOLS = ("qsub", "qstat", "qdel", "qalter", "qacct")


class Counted(CountedTools):
    """Grid Engine's commands, counted (:class:`conftest.CountedTools`)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, TOOLS)

    def submissions(self) -> list[str]:
        """qsub calls that submitted (not ``qsub -w v``, which only verifies)."""
        return [c for c in self.calls("qsub") if " -w v " not in c]


@pytest.fixture
def counted(tmp_path: Path) -> Counted:
    return Counted(tmp_path)


def flags(search: Search, *extra: str) -> list[str]:
    return ["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={search.out_dir}",
            *CLUSTER, *extra]


def run(search: Search, counted: Counted, *extra: str, timeout: float = 120,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(hpsearch_cmd(flags(search, *extra)), cwd=search.root,
                          env=env or counted.env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def start(search: Search, counted: Counted, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(hpsearch_cmd(flags(search, *extra)), cwd=search.root,
                            env=counted.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def journal(out_dir: Path) -> list[dict]:
    path = out_dir / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.endswith("}")]


def job_ids(out_dir: Path) -> list[str]:
    return [job for e in journal(out_dir) if e["ev"] == "submit" for job in e["jobs"].values()]


def queued_or_running(ids: list[str]) -> set[str]:
    """The ids among ``ids`` that ``qstat`` still lists (waiting, running or being deleted)."""
    out = subprocess.run(["qstat", "-xml"], capture_output=True, text=True, check=True).stdout
    return set(ids) & set(gp.task_states(gp.parse_qstat_xml(out)))


def test_24_runs_through_one_array_with_a_failing_run(tmp_path, counted):
    s = write_search(tmp_path, {"x": [float(i) for i in range(24)], "sleep": [0.5],
                                "mode": ["ok"]},
                     conditions=[({"x": [3.0]}, {"mode": ["exit"]})])
    started = time.monotonic()
    done = run(s, counted, "--num_jobs=4", "--job_setup=export HPS_SETUP=ran")
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr  # some failed
    rows = s.results()
    assert len(rows) == 24
    failed = [r for r in rows if r["status"] == "failed"]
    assert [(r["x"], r["failure_reason"]) for r in failed] == [("3.0", "exit status 3")]
    assert sorted(float(r["acc"]) for r in rows if r["status"] == "finished") == [
        float(i) for i in range(24) if i != 3]
    qsub = counted.submissions()
    assert len(qsub) == 1, qsub  # all 24 runs in one array
    script = Path(qsub[0].split()[-1]).read_text()
    for line in ("#$ -t 1-24", "#$ -tc 4", "#$ -notify", "#$ -l h_vmem=500M",
                 "#$ -l h_rt=24:00:00", "export HPS_SETUP=ran"):
        assert line in script.splitlines(), line
    assert "gpu=" not in script
    assert len({r["job_id"].split(".")[0] for r in rows}) == 1
    assert set(s.starts().values()) == {1}  # each run once
    assert peak_concurrency(s) <= 4  # the throttle held
    qstat = counted.calls("qstat")
    # at most one query per second, each one qstat -xml for every array
    assert len(qstat) <= elapsed + 1
    assert all(c == f"qstat -xml -u {getpass.getuser()}" for c in qstat), qstat


def test_retries_keep_num_jobs_across_arrays(tmp_path, counted):
    """Half the runs fail once: their retries go out as new arrays while the first runs."""
    s = write_search(tmp_path, {"x": [float(i) for i in range(8)], "sleep": [1.0],
                                "mode": ["ok"]},
                     conditions=[({"x": [0.0, 2.0, 4.0, 6.0]}, {"mode": ["flaky"]})])
    done = run(s, counted, "--num_jobs=3", "--retries=1", "--fail_fast=0")
    assert done.returncode == 0, done.stderr
    rows = s.results()
    assert {r["status"] for r in rows} == {"finished"} and len(rows) == 8
    assert sorted(s.starts().values()) == [1] * 4 + [2] * 4
    assert len(counted.submissions()) >= 2
    assert peak_concurrency(s) <= 3


def test_kill_9_then_restart_reattaches_without_resubmitting(tmp_path, counted, procs):
    s = write_search(tmp_path, {"x": [1.0, 2.0, 3.0], "sleep": [0]},
                     conditions=[({"x": [3.0]}, {"sleep": [8]})])
    first = start(s, counted)
    procs.append(first)
    wait_for(lambda: len(job_ids(s.out_dir)) == 3, 60, "3 submitted runs")
    first.send_signal(signal.SIGKILL)
    first.wait()
    ids = job_ids(s.out_dir)
    # the two quick runs end while no driver watches
    wait_for(lambda: sum(e["ev"] == "end" for e in s.events()) == 2, 60, "quick runs to end")
    assert queued_or_running(ids)  # the slow one still runs
    done = run(s, counted)
    assert done.returncode == 0, done.stderr
    assert "reattaching to 3 run(s)" in done.stderr
    assert len(counted.submissions()) == 1  # nothing submitted twice
    assert set(s.starts().values()) == {1} and len(s.starts()) == 3
    rows = s.results()
    assert {r["status"] for r in rows} == {"finished"} and len(rows) == 3
    assert sorted(r["job_id"] for r in rows) == sorted(ids)


def test_cancel_command_deletes_the_jobs_and_stops_the_driver(tmp_path, counted, procs):
    s = write_search(tmp_path, {"x": [1.0, 2.0], "sleep": [600]})
    proc = start(s, counted)
    procs.append(proc)
    wait_for(lambda: len(s.starts()) == 2, 60, "2 started runs")
    ids = job_ids(s.out_dir)
    done = subprocess.run(hpsearch_cmd(["cancel", str(s.out_dir)]), cwd=tmp_path,
                          env=counted.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cancelled 2 run(s)" in done.stdout
    assert proc.wait(timeout=30) != 0
    qdel = counted.calls("qdel")
    assert len(qdel) == 1 and sorted(qdel[0].split()[1:]) == sorted(ids)
    # -notify: the runs get SIGTERM from the job script, well before the queue's notify time
    wait_for(lambda: not queued_or_running(ids), 40, "jobs to leave the queue")


def test_pruned_runs_are_stopped_with_one_qdel_each(tmp_path):
    c = Curves(tmp_path, epochs=40)
    env = Counted(tmp_path).env()
    done = subprocess.run(hpsearch_cmd(c.args(*CLUSTER, "--num_jobs=1")), cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert_pruned_at_the_first_rung(c)
    # each pruned sim got SIGTERM (qdel's SIGUSR2, passed on by the job script) and said so
    assert {e["x"] for e in c.events() if e["ev"] == "stopped"} == {0.9, 0.5}
    qdel = [ln for ln in (tmp_path / "scheduler_calls.log").read_text().splitlines()
            if ln.startswith("qdel ")]
    assert len(qdel) == 2, qdel  # one per poll in which a run was pruned: each alone here


def test_packed_runs_share_jobs(tmp_path, counted):
    s = write_search(tmp_path, {"x": [float(i) for i in range(6)], "sleep": [0.5],
                                "mode": ["ok"]},
                     conditions=[({"x": [4.0]}, {"mode": ["exit"]})])
    done = run(s, counted, "--runs_per_job=3", "--visible_gpus=-1")
    assert done.returncode == 1, done.stderr
    rows = s.results()
    assert [(r["x"], r["failure_reason"]) for r in rows if r["status"] == "failed"] == [
        ("4.0", "exit status 3")]
    assert len(counted.submissions()) == 1
    script = Path(counted.submissions()[0].split()[-1]).read_text()
    assert "#$ -t 1-2" in script.splitlines() and "hpsearch.worker" in script
    assert len({r["job_id"] for r in rows}) == 2  # two jobs ran three runs each
    assert set(s.starts().values()) == {1}


def test_time_limit_fails_the_run_with_timeout(tmp_path, counted):
    s = write_search(tmp_path, {"x": [1.0], "sleep": [600]})
    done = run(s, counted, f"--num_hours={8 / 3600!r}")
    assert done.returncode == 1, done.stderr
    (row,) = s.results()
    assert row["status"] == "failed" and "TIMEOUT" in row["failure_reason"], row
    assert counted.calls("qacct")  # the scheduler's word on why the job ended


def test_gpu_and_cpu_hours_are_what_qacct_accounted(tmp_path, counted):
    """Each run's hours are its task's ``ru_wallclock`` (whole seconds) times its ``-l gpu=1``
    and its 2 slots, as ``qacct -j`` has them once the accounting file is flushed; the run
    files would give no GPU (Grid Engine sets no CUDA_VISIBLE_DEVICES) and fractions of a
    second."""
    s = write_search(tmp_path, {"x": [1.0, 2.0], "sleep": [2.0]})
    done = run(s, counted, "--sge_gpus=1", "--sge_cpus=2")
    assert done.returncode == 0, done.stderr
    rows = s.results()
    assert len(rows) == 2
    for r in rows:
        assert r["hours_from"] == "qacct", r
        seconds = float(r["gpu_hours"]) * 3600
        assert seconds >= 2 and abs(seconds - round(seconds)) < 0.004, r["gpu_hours"]
        assert round(float(r["cpu_hours"]) * 3600) == 2 * round(seconds), r
    assert counted.calls("qacct")


def test_hours_are_measured_when_qacct_does_not_answer_in_time(tmp_path, counted):
    """A ``qacct`` that never knows the job (it answers as Grid Engine's does for a job not
    in its accounting file yet: ``error: job id N not found``, exit 1 -- a stand-in, as the
    real cell flushes its file every second): each run's end waits ``flush_time`` + 10 s,
    then keeps the hours measured from its run files."""
    (counted.bin / "qacct").write_text(
        f'#!/bin/sh\necho "qacct $*" >> "{counted.log}"\n'
        'echo "error: job id $2 not found" >&2\nexit 1\n')
    s = write_search(tmp_path, {"x": [1.0, 2.0], "sleep": [0.5]})
    done = run(s, counted, "--num_jobs=2")
    assert done.returncode == 0, done.stderr
    rows = s.results()
    assert [r["hours_from"] for r in rows] == ["run files"] * 2, rows
    assert all(float(r["cpu_hours"]) > 0 for r in rows), rows
    assert len(counted.calls("qacct")) >= 2  # asked again until the wait was over


def test_walltime_warning_reaches_the_run_before_the_limit(tmp_path, counted):
    """``-l s_rt`` sends SIGUSR1 ``--walltime_warning`` seconds before ``h_rt``; the job
    script turns it into the run's SIGTERM and notes the warning: the run is cut by the time
    limit and, with ``--continue_on_timeout``, runs again resumed."""
    s = write_search(tmp_path, {"x": [1.0], "sleep": [600]})
    done = run(s, counted, f"--num_hours={40 / 3600!r}", "--walltime_warning=15",
               "--continue_on_timeout=1", timeout=200)
    script = Path(counted.submissions()[0].split()[-1]).read_text()
    assert "#$ -l s_rt=0:00:25" in script.splitlines()
    assert done.returncode == 1  # the second start sleeps past its limit too
    (row,) = s.results()
    assert row["status"] == "failed" and row["attempts"] == "2", row
    assert row["failure_reason"].startswith("exit status 143 (SIGTERM)"), row
    assert list(s.starts().values()) == [2]  # cut by the warning, then run again
    run_dir = Path(row["run_dir"])
    assert (run_dir / "walltime_warning").exists()  # the second start was warned
    assert (run_dir / "attempts" / "1" / "walltime_warning").exists()  # and the first


def test_dry_run_prints_the_job_script_and_submits_nothing(tmp_path, counted):
    s = write_search(tmp_path, {"x": [1.0, 2.0, 3.0], "mode": ["ok"]})
    done = run(s, counted, "--dry_run", "--sge_queue=all.q", "--qsub_option=A=lab",
               "--sge_cpus=2", "--sge_mem=1G", "--sge_gpus=1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#!/bin/sh")
    lines = done.stdout.splitlines()
    for line in ("#$ -t 1-3", "#$ -tc 8", "#$ -q all.q", "#$ -A lab", "#$ -pe smp 2",
                 "#$ -l h_vmem=512M", "#$ -l gpu=1", "#$ -l h_rt=24:00:00"):
        assert line in lines, line
    assert not s.out_dir.exists() and not counted.submissions()


def test_an_option_qsub_refuses_is_one_line_and_nothing_is_submitted(tmp_path, counted):
    s = write_search(tmp_path, {"x": [1.0], "mode": ["ok"]})
    done = run(s, counted, "--qsub_option=l=nosuch=1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert 'unknown resource "nosuch"' in done.stderr and "--qsub_option" in done.stderr
    assert not s.out_dir.exists() and not counted.submissions()
    assert counted.calls("qsub")  # asked, with -w v


def test_no_qsub_on_path_is_one_line(tmp_path, counted):
    s = write_search(tmp_path, {"x": [1.0], "mode": ["ok"]})
    env = hpsearch_env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "qsub").exists())
    done = run(s, counted, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "qsub is not on PATH" in done.stderr
    assert not s.out_dir.exists()


def test_wrap_script_runs_the_driver_as_a_job(tmp_path, counted):
    """The job's shell is a login shell (``login_shells`` holds sh), whose profile sets PATH
    anew: a ``--job_setup`` line puts the counting tools first again, in the driver's job
    and in its runs'."""
    s = write_search(tmp_path, {"x": [1.0, 2.0], "mode": ["ok"]})
    done = subprocess.run(
        hpsearch_cmd(["wrap", "--driver_hours=0.5", "--driver_mem=1G", *flags(s),
                      "--sge_gpus=1", f"--job_setup=export PATH={counted.bin}:$PATH"]),
        cwd=s.root, env=counted.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "#$ -l h_rt=0:30:00" in lines and "#$ -l h_vmem=1024M" in lines
    assert "gpu=" not in done.stdout  # the driver needs no GPU; its runs ask for their own
    script = tmp_path / "search.sh"
    script.write_text(done.stdout)
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    driver = gp.parse_qsub_terse(subprocess.run(
        ["qsub", "-terse", str(script)], cwd=tmp_path, env=counted.env(), capture_output=True,
        text=True, check=True).stdout)
    try:
        wait_for(lambda: not queued_or_running([driver]), 120, "the driver job to end")
    finally:
        subprocess.run(["qdel", driver], capture_output=True, check=False)
    log = tmp_path / f"hpsearch_driver.{driver}.err"
    assert "results:" in log.read_text()
    rows = s.results()
    assert len(rows) == 2 and {r["status"] for r in rows} == {"finished"}
    assert len(counted.submissions()) == 2  # the wrapper, then one array from inside it


def test_cancel_reaches_the_runs_of_packed_jobs(tmp_path, counted, procs):
    """qdel's SIGUSR2 reaches the worker as SIGTERM, which it passes on to its runs (each in
    a session of its own, out of the job's process group): they end long before the
    queue's 60 s ``notify`` time would end the job with SIGKILL."""
    s = write_search(tmp_path, {"x": [1.0, 2.0, 3.0, 4.0], "sleep": [600]})
    proc = start(s, counted, "--runs_per_job=2", "--visible_gpus=-1")
    procs.append(proc)
    wait_for(lambda: len(s.starts()) == 4, 60, "4 started runs")
    pids = [e["pid"] for e in s.events() if e["ev"] == "start"]
    done = subprocess.run(hpsearch_cmd(["cancel", str(s.out_dir)]), cwd=tmp_path,
                          env=counted.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert proc.wait(timeout=30) != 0
    assert len(counted.calls("qdel")) == 1
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), 40, "the runs to end")
