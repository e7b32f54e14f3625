"""Whole searches through the real CLI against the real single-node Slurm cluster.

Every search is a real ``python -m hpsearch ... --run_cluster --scheduler=slurm`` process
running the generic sim of ``conftest.py`` as Slurm array tasks. To count the scheduler
commands, ``sbatch`` and ``squeue`` are wrapped: a directory put first on the driver's
PATH holds two small scripts that append their argv to a log file and ``exec`` the real
tool, so Slurm still does all the work. The one-minute time-limit search is shared with
``test_slurm_backend.py`` (``timeout_search`` in ``slurm_fixture.py``) and checked last.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CountedTools, Search, hpsearch_cmd, hpsearch_env, wait_for, write_search
from slurm_fixture import slurm_cluster, timeout_search  # noqa: F401  (fixtures)

from hpsearch.backends.slurm import parse as sp

pytestmark = pytest.mark.usefixtures("slurm_cluster", "timeout_search")

CLUSTER = ("--run_cluster", "--scheduler=slurm", "--slurm_gres=", "--slurm_mem=50M")


class Counted(CountedTools):
    """``sbatch`` and ``squeue``, counted (:class:`conftest.CountedTools`)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, ("sbatch", "squeue"))


@pytest.fixture
def counted(tmp_path: Path) -> Counted:
    return Counted(tmp_path)


def run(search: Search, counted: Counted, *extra: str, timeout: float = 60,
        out_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(hpsearch_cmd(flags(search, *extra, out_dir=out_dir)),
                          cwd=search.root, env=counted.env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def start(search: Search, counted: Counted, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(hpsearch_cmd(flags(search, *extra)), cwd=search.root,
                            env=counted.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def flags(search: Search, *extra: str, out_dir: Path | None = None) -> list[str]:
    return ["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={out_dir or search.out_dir}",
            *CLUSTER, *extra]


def journal(out_dir: Path) -> list[dict]:
    path = out_dir / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.endswith("}")]


def job_ids(out_dir: Path) -> list[str]:
    return [job for e in journal(out_dir) if e["ev"] == "submit" for job in e["jobs"].values()]


def slurm_states(ids: list[str]) -> dict[str, str]:
    """``{job_id: state}`` as ``squeue -t all`` tells (finished jobs stay for MinJobAge;
    an array cancelled before its tasks were split off answers for them)."""
    arrays = sorted({j.split("_")[0] for j in ids})
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(arrays),
                          "-o", sp.SQUEUE_FORMAT], capture_output=True, text=True,
                         check=True).stdout
    states = sp.parse_squeue(out)
    return {j: state.state if (state := sp.task_state(states, j)) else "GONE" for j in ids}


def alive(ids: list[str]) -> set[str]:
    """States of jobs not over yet (a COMPLETING job's processes are still being ended)."""
    return {s for s in slurm_states(ids).values()
            if s in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")}


def test_full_search_through_one_array_with_a_failing_run(tmp_path, counted):
    s = write_search(tmp_path, {"x": [float(i) for i in range(12)], "mode": ["ok"]},
                     conditions=[({"x": [3.0]}, {"mode": ["exit"]})])
    started = time.monotonic()
    done = run(s, counted, "--num_jobs=8")
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr  # some failed
    rows = s.results()
    assert len(rows) == 12
    failed = [r for r in rows if r["status"] == "failed"]
    assert [(r["x"], r["failure_reason"]) for r in failed] == [("3.0", "exit status 3")]
    assert sorted(float(r["acc"]) for r in rows if r["status"] == "finished") == [
        float(i) for i in range(12) if i != 3]
    sbatch = counted.calls("sbatch")
    assert len(sbatch) == 1, sbatch  # all 12 runs in one array
    script = Path(sbatch[0].split()[-1]).read_text()
    assert "#SBATCH --array=0-11%8" in script and "--gres" not in script
    assert len({r["job_id"].split("_")[0] for r in rows}) == 1
    squeue = counted.calls("squeue")
    # at most one query per second; none at all is fine: every exit file may appear before
    # the first query is due on a loaded machine
    assert len(squeue) <= elapsed + 1
    assert all("--jobs=" in call for call in squeue)
    assert set(s.starts().values()) == {1}


def test_gpu_runs_see_cuda_visible_devices(tmp_path, counted):
    s = write_search(tmp_path, {"x": [1.0, 2.0], "mode": ["ok"]})
    with open(s.sim_dir / "sim.py", "a") as f:
        f.write('print("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", '
                '"unset"))\n')
    done = run(s, counted, "--slurm_gres=gpu:1")
    assert done.returncode == 0, done.stderr
    seen = set()
    for row in s.results():
        line = (Path(row["run_dir"]) / "stdout.log").read_text().splitlines()[-1]
        seen.add(line.partition("=")[2])
    assert seen and seen <= {"0", "1"}


def test_dry_run_prints_scripts_and_writes_nothing(tmp_path, counted):
    s = write_search(tmp_path, {"x": [1.0, 2.0, 3.0], "mode": ["ok"]})
    done = run(s, counted, "--dry_run", "--slurm_partition=debug",
               "--sbatch_option=account=lab")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#!/bin/bash")
    for line in ("#SBATCH --array=0-2%8", "#SBATCH --partition=debug",
                 "#SBATCH --account=lab", "#SBATCH --mem=50M", "#SBATCH --time=1440"):
        assert line in done.stdout
    assert not s.out_dir.exists() and not counted.calls("sbatch")


def test_unknown_sbatch_option_is_one_line_with_close_matches(tmp_path, counted):
    s = write_search(tmp_path, {"x": [1.0], "mode": ["ok"]})
    done = run(s, counted, "--sbatch_option=mem-per-gpux=1G")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "--mem-per-gpu" in done.stderr and "did you mean" in done.stderr
    assert not s.out_dir.exists() and not counted.calls("sbatch")


def wait_for_started_runs(search: Search, count: int) -> list[str]:
    """The job ids of ``count`` submitted runs, once each one's sim has started.

    Slurm drops a cancel's SIGTERM that reaches a batch job while slurmd is still launching
    it (seen here: cancelled 20 ms after "Launching batch job", no process of the job got
    the signal), and the job then ends only with the SIGKILL after ``KillWait`` (30 s): the
    tests that time how fast a cancel empties the queue cancel running runs."""
    wait_for(lambda: len(job_ids(search.out_dir)) == count, 30, f"{count} submitted runs")
    wait_for(lambda: len(search.starts()) == count, 60, f"{count} started runs")
    return job_ids(search.out_dir)


def test_cancel_command_cancels_jobs_and_stops_driver(tmp_path, counted, procs):
    s = write_search(tmp_path, {"x": [1.0, 2.0], "sleep": [600]})
    proc = start(s, counted)
    procs.append(proc)
    ids = wait_for_started_runs(s, 2)
    done = subprocess.run(hpsearch_cmd(["cancel", str(s.out_dir)]), cwd=tmp_path,
                          env=hpsearch_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cancelled 2 run(s)" in done.stdout
    assert proc.wait(timeout=10) != 0
    wait_for(lambda: not alive(ids), 15, "jobs to leave the queue")
    assert set(slurm_states(ids).values()) == {"CANCELLED"}


@pytest.mark.parametrize("cancel", [True, False], ids=["cancel_on_interrupt", "leave_jobs"])
def test_sigint_cancels_jobs_only_when_asked(tmp_path, counted, procs, cancel):
    s = write_search(tmp_path, {"x": [1.0, 2.0], "sleep": [600]})
    proc = start(s, counted, *(["--cancel_on_interrupt"] if cancel else []))
    procs.append(proc)
    ids = wait_for_started_runs(s, 2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 128 + signal.SIGINT
    try:
        if cancel:
            wait_for(lambda: not alive(ids), 15, "jobs to leave the queue")
            assert set(slurm_states(ids).values()) == {"CANCELLED"}
        else:
            time.sleep(1.5)
            assert alive(ids) and set(slurm_states(ids).values()) <= {"PENDING", "RUNNING"}
    finally:
        subprocess.run(["scancel", *ids], check=False)


def test_kill_9_then_restart_reattaches_without_resubmitting(tmp_path, counted, procs):
    s = write_search(tmp_path, {"x": [1.0, 2.0, 3.0], "sleep": [0]},
                     conditions=[({"x": [3.0]}, {"sleep": [6]})])
    first = start(s, counted)
    procs.append(first)
    wait_for(lambda: len(job_ids(s.out_dir)) == 3, 30, "3 submitted runs")
    first.send_signal(signal.SIGKILL)
    first.wait()
    ids = job_ids(s.out_dir)
    # the two quick runs end while no driver watches
    wait_for(lambda: sum(e["ev"] == "end" for e in s.events()) == 2, 30, "quick runs to end")
    assert alive(ids)  # the slow one still runs
    done = run(s, counted)
    assert done.returncode == 0, done.stderr
    assert "reattaching to 3 run(s)" in done.stderr
    assert len(counted.calls("sbatch")) == 1  # nothing submitted twice
    assert set(s.starts().values()) == {1} and len(s.starts()) == 3
    rows = s.results()
    assert {r["status"] for r in rows} == {"finished"} and len(rows) == 3
    assert sorted(r["job_id"] for r in rows) == sorted(ids)
    for row in rows:  # each ran once: one start record, no earlier attempt
        started = (Path(row["run_dir"]) / "started_at").read_text()
        assert started.startswith("launch=k") and f"\njob={row['job_id']}\n" in started
        assert not (Path(row["run_dir"]) / "attempts").exists()


def test_wrap_script_runs_the_driver_as_a_job(tmp_path, counted):
    s = write_search(tmp_path, {"x": [1.0, 2.0], "mode": ["ok"]})
    done = subprocess.run(
        hpsearch_cmd(["wrap", "--driver_hours=0.5", "--driver_mem=100M",
                      *flags(s)]), cwd=s.root, env=hpsearch_env(), capture_output=True,
        text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "search.sbatch"
    script.write_text(done.stdout)
    assert "#SBATCH --time=30" in done.stdout and "--gres" not in done.stdout
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    driver = subprocess.run(["sbatch", "--parsable", str(script)], cwd=tmp_path,
                            env=counted.env(), capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        wait_for(lambda: slurm_states([driver])[driver] not in ("PENDING", "RUNNING"), 60,
                 "the driver job to end")
    finally:
        subprocess.run(["scancel", driver], check=False)
    log = tmp_path / f"hpsearch_driver_{driver}.err"
    assert slurm_states([driver])[driver] == "COMPLETED", log.read_text()
    assert "results:" in log.read_text()
    rows = s.results()
    assert len(rows) == 2 and {r["status"] for r in rows} == {"finished"}
    assert len(counted.calls("sbatch")) == 2  # the wrapper, then one array from inside it


@pytest.mark.slow  # the shared one-minute search needs ~75 s; started when the session began
def test_time_limit_fails_the_run_with_timeout(timeout_search):  # noqa: F811
    proc = timeout_search.proc
    assert proc.wait(timeout=150) == 1
    (row,) = timeout_search.search.results()
    assert row["status"] == "failed" and "TIMEOUT" in row["failure_reason"]
    assert slurm_states([row["job_id"]]) == {row["job_id"]: "TIMEOUT"}
