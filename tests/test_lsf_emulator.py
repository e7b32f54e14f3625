"""The LSF emulator (tests/lsf_emulator) behaves as IBM documents, and our job templates run
under it. LSF is proprietary and cannot be installed here: this emulator is the stand-in (see
tests/lsf_emulator/README.md for the documentation followed)."""

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from hpsearch.backends.lsf.parse import (
    BJOBS_FORMAT,
    classify_exit,
    parse_bjobs,
    parse_bsub_job_id,
    parse_max_job_array_size,
)
from hpsearch.runs.files import read_exit
from hpsearch.runs.wrapper import RUN_FUNCTION, TASK_FUNCTION

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = ROOT / "tests" / "lsf_emulator"


@pytest.fixture
def lsf(tmp_path, monkeypatch):
    """PATH with the emulator first, a fresh state dir; leftover job processes are killed."""
    state = tmp_path / "lsf_state"
    monkeypatch.setenv("PATH", f"{EMULATOR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LSF_EMULATOR_STATE", str(state))
    monkeypatch.setenv("LSF_EMULATOR_MINUTE_SECONDS", "1")
    monkeypatch.setenv("LSF_EMULATOR_TERMINATE_INTERVAL", "0.5")
    yield state
    for path in (state / "jobs").glob("*.state.json"):
        data = json.loads(path.read_text())
        pids = [data["runner_pid"]] + [e["pid"] for e in data["elements"].values()]
        for pid in filter(None, pids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def cmd(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=30)


def bjobs_rows(*ids: str) -> dict:
    return parse_bjobs(cmd("bjobs", "-a", "-noheader", "-o", BJOBS_FORMAT, *ids).stdout)


def wait_finished(job_id: str, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = bjobs_rows(job_id)
        if rows and all(r.stat in ("DONE", "EXIT") for r in rows.values()):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {bjobs_rows(job_id)}")


def submit(script: str, *options: str) -> str:
    answer = cmd("bsub", *options, stdin=script)
    assert answer.returncode == 0, answer.stderr
    return parse_bsub_job_id(answer.stdout)


def test_array_respects_slot_limit_and_reports_failures(lsf, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    script = f"""#!/bin/sh
#BSUB -J "lim[1-6]%2"
#BSUB -o {tmp_path}/logs/%J.%I.out
python3 -c 'import time; print(time.time())' > {marks}/start.$LSB_JOBINDEX
echo "element $LSB_JOBINDEX of $LSB_JOBID"
sleep 0.4
python3 -c 'import time; print(time.time())' > {marks}/end.$LSB_JOBINDEX
[ "$LSB_JOBINDEX" != 5 ] || exit 7
"""
    (tmp_path / "logs").mkdir()
    answer = cmd("bsub", stdin=script)
    job = parse_bsub_job_id(answer.stdout)
    assert answer.stdout == f"Job <{job}> is submitted to default queue <normal>.\n"
    rows = wait_finished(job)
    spans = [(float((marks / f"start.{i}").read_text()), float((marks / f"end.{i}").read_text()))
             for i in range(1, 7)]
    overlap = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert overlap == 2  # never more than %2 at once, and the limit was reached
    assert {k: r.stat for k, r in rows.items()} == {
        f"{job}[{i}]": ("EXIT" if i == 5 else "DONE") for i in range(1, 7)}
    assert classify_exit(rows[f"{job}[5]"]) == "exit status 7"
    out = (tmp_path / "logs" / f"{job}.3.out").read_text()
    assert out.startswith(f"element 3 of {job}\n")
    assert "Successfully completed." in out
    assert "Exited with exit code 7." in (tmp_path / "logs" / f"{job}.5.out").read_text()


def test_run_limit_kills_with_term_runlimit(lsf, tmp_path):
    job = submit("#BSUB -W 1\nsleep 30\n", "-o", f"{tmp_path}/%J.out")
    started = time.time()
    rows = wait_finished(job)
    assert time.time() - started < 5
    assert rows[job].stat == "EXIT" and rows[job].exit_reason == "TERM_RUNLIMIT"
    assert classify_exit(rows[job]) == "TERM_RUNLIMIT"
    assert "TERM_RUNLIMIT" in (tmp_path / f"{job}.out").read_text()


def test_bkill_element_and_job(lsf):
    job = submit('#BSUB -J "k[1-3]"\nsleep 30\n')
    time.sleep(0.5)
    answer = cmd("bkill", f"{job}[2]")
    assert answer.stdout == f"Job <{job}[2]> is being terminated\n"
    time.sleep(1.5)
    rows = bjobs_rows(job)
    assert rows[f"{job}[2]"].exit_reason == "TERM_OWNER" and rows[f"{job}[1]"].stat == "RUN"
    assert classify_exit(rows[f"{job}[2]"]) == "killed"
    assert cmd("bkill", job).stdout == f"Job <{job}> is being terminated\n"
    rows = wait_finished(job)
    assert {r.exit_reason for r in rows.values()} == {"TERM_OWNER"}
    again = cmd("bkill", job)
    assert again.returncode == 255 and "Job has already finished" in again.stderr


def test_bjobs_formats_and_not_found(lsf):
    job = submit("sleep 0.2\n", "-J", "one", "-q", "short")
    rows = wait_finished(job)
    assert rows == {job: ("DONE", None, None)}
    assert cmd("bjobs").stderr == "No unfinished job found\n"  # finished jobs need -a
    wide = cmd("bjobs", "-a", "-w", job).stdout.splitlines()
    assert wide[0].split() == ["JOBID", "USER", "STAT", "QUEUE", "FROM_HOST", "EXEC_HOST",
                               "JOB_NAME", "SUBMIT_TIME"]
    assert wide[1].split()[:4] == [job, os.environ.get("USER", wide[1].split()[1]), "DONE",
                                   "short"]
    headed = cmd("bjobs", "-a", "-o", "jobid stat", job).stdout.splitlines()
    assert headed[0].split() == ["JOBID", "STAT"] and headed[1].split() == [job, "DONE"]
    missing = cmd("bjobs", "-a", "999999")
    assert missing.returncode == 255 and missing.stderr == "Job <999999> is not found\n"
    calls = (lsf / "calls.log").read_text().splitlines()
    assert sum(line.startswith("bjobs ") for line in calls) >= 5


def test_bparams_and_array_size_limit(lsf, monkeypatch):
    assert parse_max_job_array_size(cmd("bparams", "-a").stdout) == 1000
    monkeypatch.setenv("LSF_EMULATOR_MAX_ARRAY", "5")
    assert parse_max_job_array_size(cmd("bparams", "-a").stdout) == 5
    refused = cmd("bsub", "-J", "big[1-6]", "true")
    assert refused.returncode == 255 and "Job not submitted" in refused.stderr
    assert submit("true\n", "-J", "ok[1-5]")


# ---------------------------------------------------------------- our templates under LSF
def render(template: str, **context) -> str:
    env = Environment(loader=FileSystemLoader(ROOT / "hpsearch" / "backends" / "lsf" / "templates"),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["shquote"] = shlex.quote
    return env.get_template(template).render(**context)


def test_array_template_runs_every_run_with_quoted_arguments(lsf, tmp_path):
    weird = ["it's", 'a "b" $HOME `x`', "semi;colon", "new\nline", ""]
    runs = []
    for i, value in enumerate(weird, start=1):
        run_dir = tmp_path / "runs" / f"r{i}"
        run_dir.mkdir(parents=True)
        argv = ["python3", "-c", "import sys, json; print(json.dumps(sys.argv[1:]));"
                "sys.exit(int(sys.argv[2]))", value, "3" if i == 2 else "0"]
        runs.append({"index": i, "launch": "kemu", "run_dir": str(run_dir),
                     "cwd": str(tmp_path), "argv": argv, "env": {"HPSEARCH_TRIAL": str(i)}})
    script = render("lsf_array.bsub.j2", name="hps", indices=f"1-{len(runs)}", num_jobs=2,
                    log_dir=str(tmp_path / "lsf_logs"), num_hours=0.5,
                    resources='"rusage[mem=8000, ngpus_excl_p=1]"', lsf_queue="", lsf_gpu="",
                    bsub_options=["P=proj"], job_setup=["export HPS_SETUP=1"],
                    run_function=RUN_FUNCTION, task_function=TASK_FUNCTION, runs=runs,
                    warning_minutes=0, worker=None)
    assert '#BSUB -R "rusage[mem=8000, ngpus_excl_p=1]"\n' in script
    assert "#BSUB -W 0:30\n" in script and "#BSUB -q" not in script and "-gpu" not in script
    for shell in ("bash", "sh"):
        assert cmd(shell, "-n", "-c", script).returncode == 0
    (tmp_path / "lsf_logs").mkdir()
    job = submit(script)
    rows = wait_finished(job)
    assert classify_exit(rows[f"{job}[2]"]) == "exit status 3"
    for i, run in enumerate(runs, start=1):
        run_dir = Path(run["run_dir"])
        record = read_exit(run_dir, "kemu")
        assert record is not None and record.exit_code == (3 if i == 2 else 0)
        assert f"job={job}[{i}]\n" in (run_dir / "started_at").read_text()
        assert record.started_at is not None and record.wall_time >= 0
        assert json.loads((run_dir / "stdout.log").read_text()) == run["argv"][3:]
        report = (tmp_path / "lsf_logs" / f"{job}.{i}.out").read_text()
        assert "Resource usage summary" in report


def test_driver_template_runs_under_lsf(lsf, tmp_path):
    script = render("lsf_driver.bsub.j2", name="hpsearch-driver",
                    log_dir=str(tmp_path), num_hours=1, resources="", lsf_queue="long",
                    bsub_options=["x"], job_setup=[],
                    cwd=str(tmp_path), argv=["sh", "-c", "pwd > where; echo \"$1\" > arg", "-",
                                             "a 'b'"])
    assert "#BSUB -q long\n#BSUB -x\n" in script and "#BSUB -W 1:00\n" in script
    answer = cmd("bsub", stdin=script)
    assert answer.stdout.endswith("is submitted to queue <long>.\n")
    wait_finished(parse_bsub_job_id(answer.stdout))
    assert (tmp_path / "where").read_text().strip() == str(tmp_path)
    assert (tmp_path / "arg").read_text() == "a 'b'\n"
