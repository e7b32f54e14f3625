"""Runs the scheduler cuts short: requeue (Slurm ``scontrol requeue``, LSF ``brequeue``) and
the time-limit warning, through the real CLI.

Slurm is the real local cluster; LSF is the emulator of ``tests/lsf_emulator`` (LSF is
proprietary; the emulator follows IBM's documentation, see its README). The sim here
checkpoints: on SIGTERM it saves ``checkpoint`` in its output directory and exits 0 without
finishing; started again with that file there, it finishes at once. It logs every start
with the ``HPSEARCH_*`` variables it saw.

A requeued Slurm job waits two minutes before it may start again (its ``BeginTime``); the
tests let it start two seconds later with ``scontrol update JobId=... StartTime=now``, as an
administrator may.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_hpsearch, start_hpsearch, wait_for, write_search
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)
from test_pbs_emulator import pbs  # noqa: F401  (fixture: PBS emulator, each flavour)

from hpsearch.engine.journal import replay

CHECKPOINTING_SIM = r'''
import json, os, signal, sys, time
LOG = {log!r}
cfg = dict(a[2:].partition("=")[::2] for a in sys.argv[1:])
out = cfg["out_dir"]
os.makedirs(out, exist_ok=True)
checkpoint = os.path.join(out, "checkpoint")
def log(ev):
    with open(LOG, "a") as f:
        f.write(json.dumps({{"ev": ev, "x": cfg["x"], "t": time.time(), "pid": os.getpid(),
                            **{{k: v for k, v in os.environ.items()
                               if k.startswith("HPSEARCH_")}}}}) + "\n")
def finish():
    with open(os.path.join(out, "perf.txt"), "w") as f:
        f.write(f"acc {{cfg['x']}}\nloss 0\nfinished 1\n")
    log("end")
    sys.exit(0)
log("start")
if os.path.exists(checkpoint):
    finish()
told = []
signal.signal(signal.SIGTERM, lambda *_: told.append(1))
give_up = time.time() + 300
while not told and time.time() < give_up:
    time.sleep(0.05)
with open(checkpoint, "w") as f:
    f.write("saved\n")
log("saved")
sys.exit(0)
'''


def checkpointing_search(root: Path, xs: list[int]):
    search = write_search(root, {"x": xs})
    (search.sim_dir / "sim.py").write_text(CHECKPOINTING_SIM.format(log=str(search.log)))
    return search


def flags(search, *extra: str) -> list[str]:
    return ["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={search.out_dir}", *extra]


def slurm_state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"],
                          capture_output=True, text=True).stdout.strip()


def check_resumed(search, runs: int) -> None:
    """Each run started twice, the second time resumed, and finished; the first attempt was
    recorded preempted and not charged to --retries (0 here)."""
    events = search.events()
    for x in {e["x"] for e in events}:
        mine = [e for e in events if e["x"] == x]
        assert [e["ev"] for e in mine] == ["start", "saved", "start", "end"], mine
        first, second = mine[0], mine[2]
        assert "HPSEARCH_RESUMED" not in first and first["HPSEARCH_ATTEMPT"] == "1"
        assert second["HPSEARCH_RESUMED"] == "1" and second["HPSEARCH_ATTEMPT"] == "2"
    assert len({e["x"] for e in events}) == runs
    rows = search.results()
    assert [r["status"] for r in rows] == ["finished"] * runs
    assert {r["attempts"] for r in rows} == {"2"}
    for state in replay(search.out_dir / "journal.jsonl").runs.values():
        assert (state.status, state.cut, state.attempts - state.budget_start) == (
            "finished", 1, 1)
        assert state.usage["preempted"][1] > 0 and state.usage["finished"][1] > 0
    code, out, err = run_hpsearch(["status", str(search.out_dir)], search.root)
    assert "preempted" in out.split("CPU-hours")[1], out  # the CPU-hours the cut starts took
    for row in rows:  # the cut start's files wait in attempts/1; the sim kept its checkpoint
        run_dir = Path(row["run_dir"])
        first, last = (run_dir / "attempts" / "1" / "exit_code").read_text().split(), \
            (run_dir / "exit_code").read_text().split()
        assert first[0] == "0" and first[2:] == ["TERM"] and last == ["0", f"{first[1]}.1"]
        assert (run_dir / "out" / "checkpoint").exists()


@pytest.mark.parametrize("packed", [(), ("--runs_per_job=2",)], ids=["one_run", "packed"])
def test_slurm_requeue_resumes_the_run_uncharged(tmp_path, slurm_cluster, procs,  # noqa: F811
                                                 packed):
    s = checkpointing_search(tmp_path, [1, 2])
    driver = start_hpsearch(flags(s, "--run_cluster", "--scheduler=slurm", "--slurm_gres=",
                                  "--slurm_mem=50M", *packed), tmp_path)
    procs.append(driver)
    wait_for(lambda: sum(e["ev"] == "start" for e in s.events()) == 2, 60, "two runs started")
    jobs = sorted({(s.out_dir / "runs" / r / "started_at").read_text().split("job=")[1]
                   .split()[0] for r in (p.name for p in (s.out_dir / "runs").iterdir())})
    assert len(jobs) == (1 if packed else 2)
    for job in jobs:
        subprocess.run(["scontrol", "requeue", job], check=True)
    requeued = time.time()
    wait_for(lambda: all(slurm_state(j) == "PENDING" for j in jobs), 60, "jobs requeued")
    # slurmd refuses a job credential issued in the second its requeue revoked the old one
    # ("Killing non-startable batch JobId=...: Job credential revoked")
    time.sleep(max(0.0, requeued + 2 - time.time()))
    for job in jobs:
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    assert driver.wait(timeout=90) == 0, driver.stderr.read()
    check_resumed(s, runs=2)


def test_lsf_brequeue_resumes_the_run_uncharged(tmp_path, lsf, procs):  # noqa: F811
    s = checkpointing_search(tmp_path, [1, 2])
    driver = start_hpsearch(flags(s, "--run_cluster", "--scheduler=lsf"), tmp_path)
    procs.append(driver)
    wait_for(lambda: sum(e["ev"] == "start" for e in s.events()) == 2, 30, "two runs started")
    (array,) = {p.read_text().split("job=")[1].split("[")[0]
                for p in (s.out_dir / "runs").glob("*/started_at")}
    subprocess.run(["brequeue", array], check=True, capture_output=True)
    assert driver.wait(timeout=60) == 0, driver.stderr.read()
    check_resumed(s, runs=2)



def test_pbs_qrerun_resumes_the_run_uncharged(tmp_path, pbs, procs):  # noqa: F811
    """``qrerun`` through the PBS emulator (PBS is not in Debian): the job is killed with
    SIGTERM and queued again; the run resumes uncharged."""
    s = checkpointing_search(tmp_path, [1, 2])
    driver = start_hpsearch(flags(s, *pbs.flags), tmp_path)
    procs.append(driver)
    wait_for(lambda: sum(e["ev"] == "start" for e in s.events()) == 2, 30, "two runs started")
    jobs = sorted(p.read_text().split("job=")[1].split()[0]
                  for p in (s.out_dir / "runs").glob("*/started_at"))
    subprocess.run(["qrerun", *jobs], check=True, capture_output=True)
    assert driver.wait(timeout=60) == 0, driver.stderr.read()
    check_resumed(s, runs=2)

def check_continued(search) -> None:
    """The warning reached the sim, which saved its work; the run ran again, resumed, and
    finished, the timed-out attempt continued within --continue_on_timeout=1."""
    events = search.events()
    assert [e["ev"] for e in events] == ["start", "saved", "start", "end"], events
    assert events[2]["HPSEARCH_RESUMED"] == "1" and events[2]["HPSEARCH_ATTEMPT"] == "2"
    (row,) = search.results()
    assert (row["status"], row["attempts"]) == ("finished", "2")
    first = Path(row["run_dir"]) / "attempts" / "1"
    assert (first / "walltime_warning").exists() and not (Path(row["run_dir"])
                                                          / "walltime_warning").exists()
    (state,) = replay(search.out_dir / "journal.jsonl").runs.values()
    assert (state.cut, state.continued, state.attempts - state.budget_start) == (1, 1, 1)


@pytest.mark.slow  # Slurm sends the warning within its ~30 s scheduling pass of a 1-minute job
def test_slurm_time_limit_warning_reaches_the_sim_and_the_run_continues(
        tmp_path, slurm_cluster):  # noqa: F811
    s = checkpointing_search(tmp_path, [1])
    code, out, err = run_hpsearch(flags(s, "--run_cluster", "--scheduler=slurm", "--slurm_gres=",
                                        "--slurm_mem=50M", f"--num_hours={1 / 60!r}",
                                        "--walltime_warning=20", "--continue_on_timeout=1"),
                                  tmp_path, timeout=150)
    assert code == 0, err
    script = next((s.out_dir / "slurm_logs" / "scripts").iterdir()).read_text()
    assert "#SBATCH --signal=B:URG@20\n" in script and "#SBATCH --time=1\n" in script
    check_continued(s)
    assert "continued (1 of --continue_on_timeout=1)" in err


def lsf_warned(tmp_path: Path, *extra: str):
    """One checkpointing run whose LSF job is warned before its limit: one emulated minute
    lasts a second, so -W 0:03 is 3 s and -wt 1 warns a second before it."""
    s = checkpointing_search(tmp_path, [1])
    code, out, err = run_hpsearch(flags(s, "--run_cluster", "--scheduler=lsf", "--num_hours=0.05",
                                        "--walltime_warning=60", *extra), tmp_path, timeout=60)
    assert code == 0, err
    return s


@pytest.mark.parametrize("packed", [(), ("--runs_per_job=2",)], ids=["one_run", "packed"])
def test_lsf_time_limit_warning_reaches_the_sim_and_the_run_continues(tmp_path, lsf,  # noqa: F811
                                                                      packed):
    s = lsf_warned(tmp_path, "--continue_on_timeout=1", *packed)
    script = sorted((s.out_dir / "lsf_logs" / "scripts").iterdir())[0].read_text()
    assert "#BSUB -W 0:03\n#BSUB -wa URG\n#BSUB -wt 1\n" in script
    assert ("-m hpsearch.worker " in script) == bool(packed)
    check_continued(s)


def test_without_continuations_a_timed_out_run_fails_and_its_retry_resumes(tmp_path, lsf):  # noqa: F811
    s = lsf_warned(tmp_path, "--retries=1")
    events = s.events()
    assert [e["ev"] for e in events] == ["start", "saved", "start", "end"]
    assert events[2]["HPSEARCH_RESUMED"] == "1"
    (state,) = replay(s.out_dir / "journal.jsonl").runs.values()
    # the timeout was charged to --retries=1: two attempts, both counted
    assert (state.status, state.cut, state.continued, state.attempts - state.budget_start) == (
        "finished", 1, 0, 2)
    first = json.loads((Path(s.results()[0]["run_dir"]) / "run.json").read_text())
    assert first["attempt"] == 2


@pytest.mark.parametrize("packed", [(), ("--runs_per_job=2",)], ids=["one_run", "packed"])
def test_pbs_time_limit_warning_reaches_the_sim_and_the_run_continues(tmp_path, pbs,  # noqa: F811
                                                                      packed):
    """PBS sends no warning before the walltime: the job script's own timer does, through the
    PBS emulator (PBS is not in Debian). --num_hours=0.002 is a 8 s walltime, warned 3 s
    before."""
    s = checkpointing_search(tmp_path, [1])
    code, out, err = run_hpsearch(flags(s, *pbs.flags, "--num_hours=0.002",
                                        "--walltime_warning=3", "--continue_on_timeout=1",
                                        *packed), tmp_path, timeout=90)
    assert code == 0, err
    script = sorted((s.out_dir / "pbs_logs" / "scripts").iterdir())[0].read_text()
    assert "#PBS -l walltime=00:00:08\n" in script
    assert "( sleep 5 && kill -s URG $$ )" in script
    check_continued(s)
