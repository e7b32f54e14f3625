"""SlurmBackend against the real single-node cluster of scripts/slurm/start.sh.

Runs are real ``python -c`` commands in real run directories; the backend is driven
directly (submit, wait, poll) until every run ended. The time-limit test needs Slurm's
minimum limit of one minute plus the controller's check period (~75 s in all), so its
job is submitted when this module starts and collected by the last test.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpsearch.backends.base import Ended, Run
from hpsearch.backends.cluster import SubmitRefused
from hpsearch.backends.slurm import SlurmBackend
from hpsearch.options import SearchOptions
from hpsearch.runfiles import read_exit, write_run_record
from tests.slurm_fixture import slurm_cluster, timeout_search  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def make_options(out_dir: Path, **kw) -> SearchOptions:
    kw.setdefault("slurm_gres", "")
    kw.setdefault("num_jobs", 8)
    return SearchOptions(out_dir=out_dir, run_cwd=out_dir, python=sys.executable,
                         run_cluster=True, scheduler="slurm", num_hours=1,
                         slurm_mem="50M", **kw)


def make_run(out_dir: Path, name: str, code: str, *args: str) -> Run:
    argv = (sys.executable, "-c", code, *args)
    run_dir = out_dir / "runs" / name
    write_run_record(run_dir, name, 0, {}, list(argv), out_dir)
    return Run(name, 0, {}, argv, out_dir, run_dir, run_dir / "out")


def drive(backend: SlurmBackend, timeout: float = 60.0) -> dict[str, Ended]:
    """Poll until nothing is watched; check each poll asks the scheduler at most once."""
    ended: dict[str, Ended] = {}
    deadline = time.monotonic() + timeout
    while backend.job_ids():
        assert time.monotonic() < deadline, f"still running: {backend.job_ids()}"
        backend.wait(5.0)
        before = backend.scheduler_calls
        for e in backend.poll():
            assert e.run_id not in ended
            ended[e.run_id] = e
        assert backend.scheduler_calls - before <= 1
    return ended


@pytest.fixture(scope="module", autouse=True)
def timeout_job(slurm_cluster, timeout_search, tmp_path_factory):  # noqa: F811
    """Submitted first, collected by test_time_limit (last): a run over its 1-minute limit.

    Also starts the session's CLI time-limit search (``timeout_search``, checked in
    ``test_slurm_search.py``) so that both one-minute waits overlap."""
    out = tmp_path_factory.mktemp("timeout")
    backend = SlurmBackend(make_options(out, sbatch_options=("time=1",)))
    run = make_run(out, "sleeper", "import time; time.sleep(600)")
    backend.submit([run])
    yield backend, run
    backend.cancel()


def test_array_of_runs_records_exit_codes(tmp_path):
    backend = SlurmBackend(make_options(tmp_path))
    tricky = "it's $HOME; `x` \"q\" *"
    code = "import sys; print(sys.argv[1:]); sys.exit(int(sys.argv[1]))"
    runs = [make_run(tmp_path, f"r{i}", code, str(status), tricky)
            for i, status in enumerate([0, 0, 3, 0, 1])]
    submitted = backend.submit(runs)
    assert backend.submit_calls == 1
    array_id = submitted["r0"].split("_")[0]
    assert submitted == {f"r{i}": f"{array_id}_{i}" for i in range(5)}
    ended = drive(backend)
    assert {r: e.exit_code for r, e in ended.items()} == {
        "r0": 0, "r1": 0, "r2": 3, "r3": 0, "r4": 1}
    for i, status in enumerate([0, 0, 3, 0, 1]):
        run_dir = tmp_path / "runs" / f"r{i}"
        assert (run_dir / "stdout.log").read_text() == f"{[str(status), tricky]!r}\n"
        record = read_exit(run_dir)
        assert record is not None and record.wall_time is not None and record.wall_time >= 0
    assert list((tmp_path / "slurm_logs").glob("*_0.out"))


def test_arrays_split_by_max_array_size(tmp_path):
    backend = SlurmBackend(make_options(tmp_path))
    backend._limits_cache = (2, 5000)  # as if scontrol said MaxArraySize=2
    runs = [make_run(tmp_path, f"s{i}", "pass") for i in range(5)]
    submitted = backend.submit(runs)
    assert backend.submit_calls == 3
    assert len({job_id.split("_")[0] for job_id in submitted.values()}) == 3
    assert {e.exit_code for e in drive(backend).values()} == {0}


def test_gpu_runs_see_cuda_visible_devices(tmp_path):
    backend = SlurmBackend(make_options(tmp_path, slurm_gres="gpu:1"))
    code = "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))"
    backend.submit([make_run(tmp_path, f"g{i}", code) for i in range(2)])
    assert {e.exit_code for e in drive(backend).values()} == {0}
    seen = {(tmp_path / "runs" / f"g{i}" / "stdout.log").read_text().strip() for i in range(2)}
    assert seen <= {"0", "1"} and seen


def test_scheduler_queried_once_per_poll_and_not_too_often(tmp_path):
    backend = SlurmBackend(make_options(tmp_path))
    backend.submit([make_run(tmp_path, f"q{i}", "import time; time.sleep(3)") for i in range(6)])
    start = time.monotonic()
    polls = 0
    ended = {}
    while len(ended) < 6:
        polls += 1
        before = backend.scheduler_calls
        ended.update((e.run_id, e) for e in backend.poll())
        assert backend.scheduler_calls - before <= 1
        time.sleep(0.05)  # a driver polling far too eagerly
        assert time.monotonic() - start < 60
    elapsed = time.monotonic() - start
    assert backend.scheduler_calls <= elapsed / 1.0 + 1
    assert polls > 3 * backend.scheduler_calls


def test_exit_files_of_pending_runs_are_read_only_before_queries(tmp_path):
    """20 runs, one at a time (``%1``): between two squeue calls only the running run's
    exit file is looked at, at most once a second; all 20 only in the sweep before a
    query. (Looking at every file on every 0.25 s wake-up would be ~100 looks a second.)"""
    backend = SlurmBackend(make_options(tmp_path, num_jobs=1))
    backend.submit([make_run(tmp_path, f"f{i}", "import time; time.sleep(0.5)")
                    for i in range(20)])
    start = time.monotonic()
    ended = 0
    while time.monotonic() - start < 4:
        backend.wait(1.0)
        ended += len(backend.poll())
    elapsed = time.monotonic() - start
    assert ended >= 2
    assert backend.file_checks <= 20 * (backend.scheduler_calls + 1) + 3 * (elapsed + 1)
    backend.cancel()
    drive(backend)


def test_cancel_reports_cancelled(tmp_path):
    backend = SlurmBackend(make_options(tmp_path))
    runs = [make_run(tmp_path, f"c{i}", "import time; time.sleep(600)") for i in range(2)]
    backend.submit(runs)
    backend.cancel()
    ended = drive(backend)
    assert {(e.exit_code, e.reason) for e in ended.values()} == {(None, "CANCELLED")}


def test_reattach_watches_without_resubmitting(tmp_path):
    first = SlurmBackend(make_options(tmp_path))
    runs = [make_run(tmp_path, f"a{i}", "import time; time.sleep(2)") for i in range(3)]
    done = make_run(tmp_path, "done", "pass")
    submitted = first.submit([*runs, done])
    drive_until = time.monotonic() + 30
    while read_exit(done.run_dir) is None:
        assert time.monotonic() < drive_until
        time.sleep(0.2)
    del first  # the driver died

    second = SlurmBackend(make_options(tmp_path))
    already = second.reattach({r.run_id: (r, submitted[r.run_id]) for r in [*runs, done]})
    assert [(e.run_id, e.exit_code) for e in already] == [("done", 0)]
    ended = drive(second)
    assert {r: e.exit_code for r, e in ended.items()} == {"a0": 0, "a1": 0, "a2": 0}
    assert second.submit_calls == 0


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
    backend = Refusing(make_options(tmp_path), sleep=slept.append)
    submitted = backend.submit([make_run(tmp_path, "x", "pass")])
    assert list(submitted) == ["x"] and slept == [2.0, 4.0] and backend.submit_calls == 3
    backend._sleep = time.sleep
    assert drive(backend)["x"].exit_code == 0


def test_bad_partition_is_one_line_error(tmp_path):
    backend = SlurmBackend(make_options(tmp_path, slurm_partition="nosuchpart"))
    with pytest.raises(Exception, match="Invalid partition name specified") as err:
        backend.submit([make_run(tmp_path, "p", "pass")])
    assert "\n" not in str(err.value)
    assert not backend.job_ids()


@pytest.mark.slow  # ~75 s after submission: Slurm's smallest limit is 1 minute
def test_time_limit_reports_timeout(timeout_job):
    backend, run = timeout_job
    ended = drive(backend, timeout=150)
    assert ended[run.run_id].exit_code is None
    assert ended[run.run_id].reason == "TIMEOUT"
    state = subprocess.run(["squeue", "-h", "-t", "all", "-j",
                            ended[run.run_id].extra["job_id"], "-o", "%T"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert state == "TIMEOUT"
