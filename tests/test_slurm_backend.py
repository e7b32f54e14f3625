"""SlurmBackend against the real single-node cluster of scripts/slurm/start.sh.

Runs are real ``python -c`` commands in real run directories; the backend is driven
directly (submit, wait, poll) until every run ended. The time-limit test needs Slurm's
minimum limit of one minute plus the controller's check period (~75 s in all), so its
job is submitted when this module starts and collected by the last test.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from slurm_fixture import slurm_cluster, timeout_search  # noqa: F401  (fixtures)

from hpsearch.backends.base import BackendError, Ended
from hpsearch.backends.cluster.scheduler import SubmitRefused
from hpsearch.backends.slurm import parse as sp
from hpsearch.backends.slurm.backend import SlurmBackend, scancel
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import cluster_settings, resources_of
from hpsearch.runs.files import read_exit, write_run_record
from hpsearch.runs.model import Run

pytestmark = pytest.mark.usefixtures("slurm_cluster")
#: a launch key as the driver makes them (random): the cluster may be shared with other test
#: runs, whose search directories can have the same name as this one's
KEY = f"k{secrets.token_hex(4)}"


def make_options(out_dir: Path, **kw) -> SearchOptions:
    kw.setdefault("slurm_gres", "")
    kw.setdefault("num_jobs", 8)
    return SearchOptions(out_dir=out_dir, run_cwd=out_dir, python=sys.executable,
                         run_cluster=True, scheduler="slurm", num_hours=1,
                         slurm_mem="50M", **kw)


def make_run(out_dir: Path, name: str, code: str, *args: str, key: str = KEY,
             **flags: Any) -> Run:
    """A run of ``code``, needing what ``make_options(out_dir, **flags)`` ask for."""
    argv = (sys.executable, "-c", code, *args)
    run_dir = out_dir / "runs" / name
    write_run_record(run_dir, {"run_id": name}, argv, out_dir, {})
    return Run(name, 0, {}, argv, out_dir, run_dir, run_dir / "out", launch=key,
               resources=resources_of(make_options(out_dir, **flags)))


def drive(backend: SlurmBackend, timeout: float = 240.0) -> dict[str, Ended]:
    """Poll until nothing is watched; check each poll asks the scheduler at most once."""
    ended: dict[str, Ended] = {}
    deadline = time.monotonic() + timeout
    while backend.job_ids():
        assert time.monotonic() < deadline, f"still running: {backend.job_ids()}"
        backend.wait(5.0)
        before = backend.calls.scheduler
        for e in backend.poll():
            assert e.run_id not in ended
            ended[e.run_id] = e
        assert backend.calls.scheduler - before <= 1
    return ended


def squeue_states(job_ids: list[str]) -> dict[str, str]:
    """What ``squeue -t all`` says of each task (an unsplit array answers for its tasks)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(arrays),
                          "-o", sp.SQUEUE_FORMAT], capture_output=True, text=True,
                         check=True).stdout
    states = sp.parse_squeue(out)
    return {j: state.state if (state := sp.task_state(states, j)) else "GONE"
            for j in job_ids}


@pytest.fixture(scope="module", autouse=True)
def timeout_job(slurm_cluster, timeout_search, tmp_path_factory):  # noqa: F811
    """Submitted first, collected by test_time_limit (last): a run over its 1-minute limit.

    Also starts the session's CLI time-limit search (``timeout_search``, checked in
    ``test_slurm_search.py``) so that both one-minute waits overlap."""
    out = tmp_path_factory.mktemp("timeout")
    backend = SlurmBackend(*cluster_settings(make_options(out, sbatch_options=("time=1",))))
    run = make_run(out, "sleeper", "import time; time.sleep(600)", sbatch_options=("time=1",))
    backend.submit([run], KEY)
    yield backend, run
    backend.cancel()


def test_array_of_runs_records_exit_codes(tmp_path):
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    tricky = "it's $HOME; `x` \"q\" *"
    code = "import sys; print(sys.argv[1:]); sys.exit(int(sys.argv[1]))"
    runs = [make_run(tmp_path, f"r{i}", code, str(status), tricky)
            for i, status in enumerate([0, 0, 3, 0, 1])]
    submitted = backend.submit(runs, KEY)
    assert backend.calls.submits == 1
    array_id = submitted["r0"].split("_")[0]
    assert submitted == {f"r{i}": f"{array_id}_{i}" for i in range(5)}
    ended = drive(backend)
    assert {r: e.exit_code for r, e in ended.items()} == {
        "r0": 0, "r1": 0, "r2": 3, "r3": 0, "r4": 1}
    for i, status in enumerate([0, 0, 3, 0, 1]):
        run_dir = tmp_path / "runs" / f"r{i}"
        assert (run_dir / "stdout.log").read_text() == f"{[str(status), tricky]!r}\n"
        record = read_exit(run_dir, KEY)
        assert record is not None and record.wall_time is not None and record.wall_time >= 0
        started = (run_dir / "started_at").read_text()
        assert f"launch={KEY}\njob={array_id}_{i}\n" in started
    assert list((tmp_path / "slurm_logs").glob("*_0.out"))


def test_one_array_per_submission_at_most_max_array_size(tmp_path):
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    backend._limits_cache = (2, 5000)  # as if scontrol said MaxArraySize=2
    runs = [make_run(tmp_path, f"s{i}", "pass") for i in range(5)]
    assert backend.room() == 2
    submitted = backend.submit(runs, KEY)
    assert list(submitted) == ["s0", "s1"] and backend.calls.submits == 1
    assert {e.exit_code for e in drive(backend).values()} == {0}


def test_num_jobs_holds_across_arrays(tmp_path):
    """Three launches of 4 runs each with --num_jobs=3: never more than 3 run at once.

    Each run logs its start and end time; the second and third arrays go out while the
    first still runs, with what is left of the cap as their throttle, raised as the older
    arrays drain."""
    log = tmp_path / "times.jsonl"
    code = ("import json, sys, time; t = time.time(); time.sleep(1.5); "
            f"open({str(log)!r}, 'a').write(json.dumps([t, time.time()]) + '\\n')")
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path, num_jobs=3)))
    pending = [make_run(tmp_path, f"n{i}", code, key=f"k{i // 4}") for i in range(12)]
    ended: dict[str, Ended] = {}
    deadline = time.monotonic() + 120
    while len(ended) < 12:
        assert time.monotonic() < deadline
        launch = [r for r in pending if r.launch == pending[0].launch] if pending else []
        room = backend.room()
        if launch and room:
            submitted = backend.submit(launch[:room], launch[0].launch)
            pending = [r for r in pending if r.run_id not in submitted]
        backend.wait(1.0)
        ended.update((e.run_id, e) for e in backend.poll())
    assert {e.exit_code for e in ended.values()} == {0}
    spans = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(spans) == 12
    moments = sorted([(t0, 1) for t0, _ in spans] + [(t1, -1) for _, t1 in spans])
    peak = running = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    assert peak <= 3, spans
    assert backend.calls.submits >= 3


def test_gpu_runs_see_cuda_visible_devices(tmp_path):
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path, slurm_gres="gpu:1")))
    code = "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))"
    backend.submit([make_run(tmp_path, f"g{i}", code, slurm_gres="gpu:1") for i in range(2)],
                   KEY)
    assert {e.exit_code for e in drive(backend).values()} == {0}
    seen = {(tmp_path / "runs" / f"g{i}" / "stdout.log").read_text().strip() for i in range(2)}
    assert seen <= {"0", "1"} and seen
    for i in range(2):
        started = (tmp_path / "runs" / f"g{i}" / "started_at").read_text()
        assert "cuda_visible_devices=" in started and "cuda_visible_devices=\n" not in started


def test_scheduler_queried_once_per_poll_and_not_too_often(tmp_path):
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    backend.submit([make_run(tmp_path, f"q{i}", "import time; time.sleep(3)")
                    for i in range(6)], KEY)
    start = time.monotonic()
    polls = 0
    ended = {}
    while len(ended) < 6:
        polls += 1
        before = backend.calls.scheduler
        ended.update((e.run_id, e) for e in backend.poll())
        assert backend.calls.scheduler - before <= 1
        time.sleep(0.05)  # a driver polling far too eagerly
        assert time.monotonic() - start < 240
    elapsed = time.monotonic() - start
    assert backend.calls.scheduler <= elapsed / 1.0 + 2  # + the sbatch
    assert polls > 3 * backend.calls.scheduler


def test_exit_files_of_pending_runs_are_read_only_before_queries(tmp_path):
    """20 runs, one at a time (``%1``): between two squeue calls only the running run's
    exit file is looked at, at most once a second; all 20 only in the sweep before a
    query. (Looking at every file on every 0.25 s wake-up would be ~100 looks a second.)"""
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path, num_jobs=1)))
    backend.submit([make_run(tmp_path, f"f{i}", "import time; time.sleep(0.5)")
                    for i in range(20)], KEY)
    start = time.monotonic()
    ended = 0
    # watch for 4 s at least and until two runs ended (a loaded node may hold the array a while)
    while time.monotonic() - start < 4 or ended < 2:
        backend.wait(1.0)
        ended += len(backend.poll())
        assert time.monotonic() - start < 120, "the array's first two runs never ended"
    elapsed = time.monotonic() - start
    assert backend.calls.files <= 20 * (backend.calls.scheduler + 1) + 3 * (elapsed + 1)
    ids = list(backend.job_ids().values())
    backend.cancel()
    assert not backend.job_ids()
    deadline = time.monotonic() + 120
    while set(squeue_states(ids).values()) - {"CANCELLED", "COMPLETED", "GONE"}:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_cancel_is_one_scancel_and_the_jobs_end_cancelled(tmp_path):
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    runs = [make_run(tmp_path, f"c{i}", "import time; time.sleep(600)") for i in range(2)]
    ids = list(backend.submit(runs, KEY).values())
    before = backend.calls.scheduler
    backend.cancel()
    assert backend.calls.scheduler == before + 1 and not backend.job_ids()
    deadline = time.monotonic() + 120
    while set(squeue_states(ids).values()) != {"CANCELLED"}:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_a_signal_to_jobs_that_ended_already_is_no_error(tmp_path):
    """A prune's ``scancel --signal=TERM`` that reaches a job as it ends (Slurm then
    fails it: 'Invalid job id specified', or exit status 229 while it completes) must
    not stop the search."""
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    runs = [make_run(tmp_path, f"s{i}", "pass") for i in range(2)]
    ids = list(backend.submit(runs, KEY).values())
    assert set(drive(backend)) == {"s0", "s1"}
    scancel(ids, "--signal=TERM", "--full")  # raised BackendError('scancel: ...') before
    scancel([*ids, "99999999"], "--signal=TERM", "--full")
    with pytest.raises(BackendError, match="scancel: "):
        scancel(ids, "--signal=NOSUCHSIGNAL", "--full")


def test_reattach_watches_without_resubmitting(tmp_path):
    first = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    gate = tmp_path / "gate"  # the a-runs go on until the second backend has reattached
    waits = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)"
    runs = [make_run(tmp_path, f"a{i}", waits) for i in range(3)]
    done = make_run(tmp_path, "done", "pass")
    submitted = first.submit([*runs, done], KEY)
    drive_until = time.monotonic() + 120
    while read_exit(done.run_dir, KEY) is None:
        assert time.monotonic() < drive_until
        time.sleep(0.2)
    del first  # the driver died

    second = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    try:
        already = second.reattach({r.run_id: (r, submitted[r.run_id]) for r in [*runs, done]})
        assert [(e.run_id, e.exit_code) for e in already] == [("done", 0)]
    finally:
        gate.touch()
    ended = drive(second)
    assert {r: e.exit_code for r, e in ended.items()} == {"a0": 0, "a1": 0, "a2": 0}
    assert second.calls.submits == 0


def test_resolve_finds_an_unanswered_launch_by_its_name(tmp_path):
    """A driver journaled a launch, submitted it and died before journaling the answer:
    the next one asks squeue for the launch's job name instead of submitting again."""
    first = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    runs = [make_run(tmp_path, f"u{i}", "import time; time.sleep(1)") for i in range(3)]
    submitted = first.submit(runs, KEY)
    del first
    second = SlurmBackend(*cluster_settings(make_options(tmp_path)))
    assert second.resolve(KEY, runs) == submitted
    other = [make_run(tmp_path, "never", "pass", key="knever01")]
    assert second.resolve("knever01", other) == {}  # never submitted: run it again
    second.reattach({r.run_id: (r, submitted[r.run_id]) for r in runs})
    assert {e.exit_code for e in drive(second).values()} == {0}
    assert second.calls.submits == 0


def test_submission_that_timed_out_but_queued_is_not_submitted_twice(tmp_path):
    """sbatch queued the array, then answered "Socket timed out": the backend looks the
    launch up by name and takes that array instead of submitting a second one."""

    class TimingOut(SlurmBackend):
        def _submit_array(self, script):
            if self.calls.submits == 1:
                subprocess.run(["sbatch", "--parsable", str(script)], check=True,
                               capture_output=True)
                from hpsearch.backends.cluster.scheduler import SubmitUnclear
                raise SubmitUnclear("sbatch: error: Batch job submission failed: Socket timed "
                                    "out on send/recv operation")
            return super()._submit_array(script)

    backend = TimingOut(*cluster_settings(make_options(tmp_path)), sleep=lambda s: None)
    runs = [make_run(tmp_path, f"t{i}", "pass") for i in range(2)]
    submitted = backend.submit(runs, KEY)
    assert len(submitted) == 2 and backend.calls.submits == 1
    assert {e.exit_code for e in drive(backend).values()} == {0}
    name = backend.job_name(KEY)
    out = subprocess.run(["squeue", "-h", "-t", "all", f"--name={name}", "-o", "%F"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(set(out)) == 1  # one array of that name


def test_submit_limit_is_retried_not_failed(tmp_path):
    """A QOS submit limit needs slurmdbd, which this cluster lacks: the first two sbatch
    answers are faked as refusals; the third is the real sbatch."""

    class Refusing(SlurmBackend):
        refusals = 2

        def _submit_array(self, script):
            if self.refusals:
                self.refusals -= 1
                raise SubmitRefused("sbatch: QOSMaxSubmitJobPerUserLimit")
            return super()._submit_array(script)

    slept: list[float] = []
    backend = Refusing(*cluster_settings(make_options(tmp_path)), sleep=slept.append)
    submitted = backend.submit([make_run(tmp_path, "x", "pass")], KEY)
    assert list(submitted) == ["x"] and slept == [2.0, 4.0] and backend.calls.submits == 3
    backend._sleep = time.sleep
    assert drive(backend)["x"].exit_code == 0


def test_bad_partition_is_one_line_error(tmp_path):
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path, slurm_partition="nosuchpart")))
    with pytest.raises(Exception, match="Invalid partition name specified") as err:
        backend.submit([make_run(tmp_path, "p", "pass")], KEY)
    assert "\n" not in str(err.value)
    assert not backend.job_ids()


def test_job_setup_lines_run_before_the_command(tmp_path):
    backend = SlurmBackend(*cluster_settings(make_options(tmp_path, job_setup=(
        "export HPS_SETUP=loaded", f"echo setup > {os.path.join(tmp_path, 'setup.txt')}"))))
    code = "import os; print(os.environ['HPS_SETUP'])"
    backend.submit([make_run(tmp_path, "js", code)], KEY)
    assert drive(backend)["js"].exit_code == 0
    assert (tmp_path / "runs" / "js" / "stdout.log").read_text() == "loaded\n"
    assert (tmp_path / "setup.txt").read_text() == "setup\n"


@pytest.mark.slow  # ~75 s after submission: Slurm's smallest limit is 1 minute
def test_time_limit_reports_timeout(timeout_job):
    backend, run = timeout_job
    ended = drive(backend, timeout=150)
    # Slurm sends SIGTERM at the limit: the wrapper records 143, the scheduler says why
    assert ended[run.run_id].exit_code in (None, 143)
    assert ended[run.run_id].reason == "TIMEOUT"
    state = subprocess.run(["squeue", "-h", "-t", "all", "-j",
                            ended[run.run_id].extra["job_id"], "-o", "%T"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert state == "TIMEOUT"
