"""The PBS backend end to end: ``python -m hpsearch --run_cluster --scheduler=pbs``, for
OpenPBS and for Torque (``--pbs_flavor``).

PBS is not packaged in Debian, so these tests put the emulator of ``tests/pbs_emulator``
first on PATH (the ``pbs`` fixture runs each test once per flavour): it really runs the job
scripts as processes, holds the arrays' limits, enforces the walltime, and speaks the formats
OpenPBS and Torque document (see its README.md); it has no nodes or scheduling policy and
enforces no resource but the walltime. Every call of its commands is logged to ``calls.log``
in its state directory, which is how these tests count scheduler calls.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    hpsearch_env,
    run_hpsearch,
    start_hpsearch,
    wait_for,
    write_search,
)
from test_pbs_emulator import Pbs, cmd, pbs  # noqa: F401  (fixture: emulator on PATH)

from hpsearch.backends.pbs import parse as pp
from hpsearch.backends.pbs.backend import resource_directives
from hpsearch.runs.model import Resources

TRICKY = "it's \"q\" $HOME `x` a;b  c"


def pbs_args(search, pbs: Pbs, *extra: str) -> list[str]:  # noqa: F811
    return [a for a in search.args(*pbs.flags, *extra) if a != "--visible_gpus=-1"]


def max_overlap(events: list[dict]) -> int:
    """The most sims running at one moment, from their own start/end log lines."""
    edges = sorted((e["t"], 1 if e["ev"] == "start" else -1) for e in events)
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def queries(pbs: Pbs) -> list[list[str]]:  # noqa: F811
    """The argv of every status query (``qstat ... -t``) the driver made."""
    return [argv for _, _, argv in pbs.calls("qstat") if "-t" in argv and "-B" not in argv]


def check_qstat_rate(pbs: Pbs, started: float, ended: float) -> None:  # noqa: F811
    """About one status query per second of driver time at most, each one call for all
    watched arrays, in the flavour's format."""
    asked = queries(pbs)
    assert asked and len(asked) <= 2 + (ended - started), (len(asked), ended - started)
    head = (["-f", "-F", "json", "-t", "-x"] if pbs.flavor == "openpbs" else ["-f", "-t"])
    for argv in asked:
        assert argv[:len(head)] == head, argv


def test_24_runs_each_once_throttle_held_one_qstat_per_poll(tmp_path, pbs):  # noqa: F811
    s = write_search(tmp_path, {"x": [float(i) for i in range(24)], "sleep": [0.3],
                                "v": [TRICKY]})
    start = time.time()
    rc, _, err = run_hpsearch(pbs_args(s, pbs, "--num_jobs=4"), tmp_path, timeout=240)
    wall = time.time() - start
    assert rc == 0, err
    rows = s.results()
    assert len(rows) == 24 and {r["status"] for r in rows} == {"finished"}
    assert sorted(s.starts().values()) == [1] * 24  # each run ran once
    assert max_overlap(s.events()) <= 4
    assert len(pbs.calls("qsub")) == 1
    check_qstat_rate(pbs, start, start + wall)
    (array,) = {pp.short_id(r["job_id"]).split("[")[0] for r in rows}
    assert sorted(r["job_id"] for r in rows) == sorted(
        f"{array}[{i}].pbsemu" for i in range(1, 25))
    script = next((s.out_dir / "pbs_logs" / "scripts").iterdir()).read_text()
    throttle = ("#PBS -J 1-24\n#PBS -W max_run_subjobs=4\n" if pbs.flavor == "openpbs"
                else "#PBS -t 1-24%4\n")
    assert throttle in script
    for r in rows:
        assert r["gpu_hours"] == "0.0" and float(r["cpu_hours"]) >= 0


def test_exit_status_of_a_failing_run_and_retries(tmp_path, pbs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1.0, 2.0, 3.0], "mode": ["ok"]},
                     conditions=[({"x": [2.0]}, {"mode": ["exit"]}),
                                 ({"x": [3.0]}, {"mode": ["flaky"]})])
    rc, _, err = run_hpsearch(pbs_args(s, pbs, "--retries=1", "--fail_fast=0"), tmp_path,
                              timeout=120)
    assert rc == 1, err
    rows = {r["x"]: r for r in s.results()}
    assert {x: (r["status"], r["attempts"]) for x, r in rows.items()} == {
        "1.0": ("finished", "1"), "2.0": ("failed", "2"), "3.0": ("finished", "2")}
    assert rows["2.0"]["failure_reason"] == "exit status 3"


def test_walltime_ends_a_run_as_walltime_exceeded(tmp_path, pbs):  # noqa: F811
    """--num_hours=0.0005 asks ``-l walltime=00:00:02``; the sim sleeps 60 s and is killed."""
    s = write_search(tmp_path, {"x": [1, 2], "sleep": [60]})
    rc, _, err = run_hpsearch(pbs_args(s, pbs, "--num_hours=0.0005"), tmp_path, timeout=120)
    assert rc == 1, err
    rows = s.results()
    assert [r["status"] for r in rows] == ["failed", "failed"], err
    # the server's word, with what the run's exit file says of the SIGTERM that ended it
    assert {r["failure_reason"].split(" (")[0] for r in rows} == {"walltime exceeded"}
    script = next((s.out_dir / "pbs_logs" / "scripts").iterdir()).read_text()
    assert "#PBS -l walltime=00:00:02\n" in script
    for r in rows:  # charged what PBS accounted: resources_used.walltime, whole seconds
        seconds = float(r["cpu_hours"]) * 3600
        assert seconds >= 2 and abs(seconds - round(seconds)) < 0.004, r["cpu_hours"]


def test_cancel_is_one_qdel(tmp_path, pbs, procs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2, 3], "hold": [True]})
    s.hold.write_text("")
    driver = start_hpsearch(pbs_args(s, pbs, "--num_jobs=2"), tmp_path)
    procs.append(driver)
    wait_for(lambda: len(s.starts()) == 2, what="two runs started")
    done = subprocess.run([sys.executable, "-m", "hpsearch", "cancel", str(s.out_dir)],
                          cwd=tmp_path, env=hpsearch_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cancelled 3 run(s)" in done.stdout
    driver.wait(timeout=30)
    kills = pbs.calls("qdel")
    assert len(kills) == 1 and len(kills[0][2]) == 3
    array = pp.short_id(kills[0][2][0]).split("[")[0]
    wait_for(lambda: all(pp.is_over(pp.job_state(r)) for k, r in pbs.records(
        f"{array}[]").items() if "[]" not in k), what="subjobs ended")
    assert not [e for e in s.events() if e["ev"] == "end"]  # never got to finish


def test_kill_9_then_resume_without_double_submission(tmp_path, pbs, procs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "sleep": [1.0]})
    args = pbs_args(s, pbs, "--num_jobs=2")
    driver = start_hpsearch(args, tmp_path)
    procs.append(driver)
    wait_for(lambda: len(s.starts()) >= 2, what="two runs started")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert len(pbs.calls("qsub")) == 1
    rc, _, err = run_hpsearch(args, tmp_path, timeout=120)
    assert rc == 0, err
    assert "reattaching to 4 run(s)" in err
    assert len(pbs.calls("qsub")) == 1  # the resumed driver submitted nothing
    assert sorted(s.starts().values()) == [1, 1, 1, 1]
    assert [r["status"] for r in s.results()] == ["finished"] * 4


def test_ranges_throttle_submits_no_array_beyond_the_free_slots(tmp_path, pbs, monkeypatch):  # noqa: F811
    """A server without ``max_run_subjobs`` (qsub refuses it here): ``--pbs_throttle=ranges``
    holds --num_jobs by arrays no larger than the free slots."""
    monkeypatch.setenv("PBS_EMULATOR_NO_MAX_RUN_SUBJOBS", "1")
    s = write_search(tmp_path, {"x": [float(i) for i in range(7)], "sleep": [0.5]})
    rc, _, err = run_hpsearch(pbs_args(s, pbs, "--num_jobs=3", "--pbs_throttle=ranges"),
                              tmp_path, timeout=180)
    assert rc == 0, err
    assert {r["status"] for r in s.results()} == {"finished"}
    assert max_overlap(s.events()) <= 3
    scripts = [p.read_text() for p in (s.out_dir / "pbs_logs" / "scripts").iterdir()]
    assert len(scripts) >= 3 and not any("max_run_subjobs" in t or "%" in t.split(
        "\n#PBS -o")[0] for t in scripts)
    assert not pbs.calls("qalter")


def test_packed_runs_per_job(tmp_path, pbs):  # noqa: F811
    s = write_search(tmp_path, {"x": [float(i) for i in range(6)], "sleep": [0.5]})
    rc, _, err = run_hpsearch(pbs_args(s, pbs, "--runs_per_job=3", "--visible_gpus=-1"),
                              tmp_path, timeout=180)
    assert rc == 0, err
    rows = s.results()
    assert {r["status"] for r in rows} == {"finished"}
    assert len({r["job_id"] for r in rows}) <= 2  # 6 runs in at most 2 jobs
    assert len(pbs.calls("qsub")) == 1
    assert "-m hpsearch.worker" in next((s.out_dir / "pbs_logs" / "scripts").iterdir()
                                        ).read_text()


def test_dry_run_prints_the_job_script_and_submits_nothing(tmp_path, pbs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2, 3]})
    rc, out, err = run_hpsearch(pbs_args(s, pbs, "--dry_run", "--num_jobs=2", "--pbs_ngpus=2",
                                         "--pbs_ncpus=4", "--pbs_mem=16gb", "--num_hours=12",
                                         "--pbs_queue=gpu", "--qsub_option=A=my lab",
                                         "--job_setup=module load cuda"), tmp_path)
    assert rc == 0, err
    assert not s.out_dir.exists() and not pbs.calls("qsub")
    lines = [ln for ln in out.splitlines() if ln.startswith("#PBS")]
    resources = (["#PBS -l select=1:ncpus=4:ngpus=2:mem=16gb"] if pbs.flavor == "openpbs"
                 else ["#PBS -l nodes=1:ppn=4:gpus=2", "#PBS -l mem=16gb"])
    expected = [*resources, "#PBS -l walltime=12:00:00", "#PBS -q gpu", "#PBS -A 'my lab'"]
    assert lines[-len(expected):] == expected
    assert "\nmodule load cuda\n" in out


@pytest.mark.parametrize("flag, words", [
    ("--qsub_option=Y=1", "has no option -Y"), ("--qsub_option=N=name", "sets -N itself"),
    ("--qsub_option=A=", "needs a value"), ("--qsub_option=not a key", "KEY=VALUE"),
    ("--pbs_mem=lots", "not a PBS size"), ("--pbs_flavor=lsf", "--pbs_flavor")])
def test_bad_pbs_flags_are_one_line_errors(tmp_path, pbs, flag, words):  # noqa: F811
    s = write_search(tmp_path, {"x": [1]})
    rc, _, err = run_hpsearch(pbs_args(s, pbs, flag), tmp_path)
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, (flag, err)
    assert not s.out_dir.exists() and not pbs.calls("qsub")


def test_an_option_qsub_refuses_is_one_line_and_nothing_is_queued(tmp_path, pbs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2]})
    rc, _, err = run_hpsearch(pbs_args(s, pbs, "--qsub_option=l=frobs=2"), tmp_path)
    assert rc == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("hpsearch: error: ") and "Unknown resource" in last, err
    assert "Traceback" not in err
    assert not list((pbs.state / "jobs").glob("*.state.json"))


def test_no_qsub_on_path_is_one_line(tmp_path, pbs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1]})
    env = hpsearch_env()
    env["PATH"] = str(Path(sys.executable).parent)
    done = subprocess.run([sys.executable, "-m", "hpsearch", *pbs_args(s, pbs)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("hpsearch: error: qsub is not on PATH")
    assert done.stderr.count("\n") == 1 and not s.out_dir.exists()


def test_wrap_script_runs_the_driver_under_qsub(tmp_path, pbs):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2]})
    done = subprocess.run([sys.executable, "-m", "hpsearch", "wrap", "--driver_hours=2",
                           *pbs_args(s, pbs, "--num_hours=1.5", "--pbs_ngpus=1")],
                          cwd=tmp_path, env=hpsearch_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    directives = [ln for ln in script.splitlines() if ln.startswith("#PBS")]
    assert "#PBS -l walltime=02:00:00" in directives
    assert not [ln for ln in directives if "gpus" in ln]  # the driver asks for no GPU
    assert [ln for ln in directives if "mem=8gb" in ln] and "--num_hours=1.5" in script
    path = tmp_path / "driver.sh"
    path.write_text(script)
    answer = cmd("qsub", str(path), cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    job = pp.short_id(pp.parse_qsub_job_id(answer.stdout))
    wait_for(lambda: pp.job_state(pbs.records(job).get(job, {})) == pp.FINISHED, timeout=60,
             what="the wrapped driver finished")
    assert [r["status"] for r in s.results()] == ["finished", "finished"]
    assert len(pbs.calls("qsub")) == 2  # the driver's job, then its array


def test_resource_directives_of_each_flavour():
    r = Resources(gpus=4, cpus=64, memory=128 * 1024 ** 3, nodes=1, time_limit=12 * 3600)
    assert resource_directives(r) == ["-l select=1:ncpus=64:ngpus=4:mem=128gb",
                                      "-l walltime=12:00:00"]
    assert resource_directives(r, "torque") == ["-l nodes=1:ppn=64:gpus=4", "-l mem=128gb",
                                                "-l walltime=12:00:00"]
    bare = Resources(gpus=0, cpus=1, memory=None, nodes=1, time_limit=None)
    assert resource_directives(bare) == ["-l select=1:ncpus=1"]
    assert resource_directives(Resources(gpus=0, cpus=1, memory=1536 * 1024 ** 2,
                                         time_limit=90.2)) == [
        "-l select=1:ncpus=1:mem=1536mb", "-l walltime=00:01:31"]

