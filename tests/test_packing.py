"""Packing runs into cluster jobs (``--runs_per_job``), through the real CLI.

Slurm is the real local cluster (two fake GPUs: ``gres gpu:2``, see scripts/slurm/start.sh);
LSF is the emulator of ``tests/lsf_emulator`` (LSF is proprietary and cannot be installed
here; the emulator speaks the formats IBM documents). The sims are the generic sim of
``conftest.py`` with one more line: each logs its cluster job, its ``CUDA_VISIBLE_DEVICES``
and its ``HPSEARCH_*`` variables, so a test knows which job ran which run, when, and on
which GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import hpsearch_env, run_hpsearch, start_hpsearch, wait_for, write_search
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

from hpsearch.backends import scheduler_names
from hpsearch.backends.cluster import claims
from hpsearch.runs.files import write_run_record
from hpsearch.runs.model import Run

SLURM = ("--run_cluster", "--scheduler=slurm", "--slurm_mem=50M")

#: appended to the generic sim: one "env" line per start, after its "end" line
ENV_LINE = '''
log("env", job=os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("LSB_JOBID", "")) + ":"
    + os.environ.get("SLURM_ARRAY_TASK_ID", os.environ.get("LSB_JOBINDEX", "")),
    cvd=os.environ.get("CUDA_VISIBLE_DEVICES"), attempt=os.environ.get("HPSEARCH_ATTEMPT"),
    resumed=os.environ.get("HPSEARCH_RESUMED"), run=os.environ.get("HPSEARCH_RUN_ID"))
'''


def cluster_args(search, *extra: str, cluster: tuple[str, ...] = SLURM) -> list[str]:
    return ["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={search.out_dir}", *cluster,
            *extra]


def packed_search(root: Path, grid: dict) -> object:
    search = write_search(root, grid)
    with open(search.sim_dir / "sim.py", "a") as f:
        f.write(ENV_LINE)
    return search


def starts(search) -> list[dict]:
    """One record per start of a sim: its key, job, GPU, start and end time (by pid)."""
    by_pid: dict[int, dict] = {}
    for event in search.events():
        record = by_pid.setdefault(event["pid"], {"key": event["key"]})
        if event["ev"] == "start":
            record["t0"] = event["t"]
        elif event["ev"] == "end":
            record["t1"] = event["t"]
        elif event["ev"] == "env":
            record.update(job=event["job"], cvd=event["cvd"], run=event["run"],
                          attempt=event["attempt"], resumed=event["resumed"])
    return list(by_pid.values())


def most_at_once(records: list[dict]) -> int:
    edges = sorted([(r["t0"], 1) for r in records] + [(r["t1"], -1) for r in records])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def check_packed(search, records: list[dict], jobs_at_most: int, per_job: int) -> None:
    """Every run started once, in one of at most ``jobs_at_most`` jobs, never more than
    ``per_job`` at once in a job; the results agree."""
    rows = search.results()
    assert {r["status"] for r in rows} == {"finished"} and len(rows) == len(records)
    assert sorted(r["key"] for r in records) == sorted({r["key"] for r in records})
    jobs: dict[str, list[dict]] = {}
    for record in records:
        jobs.setdefault(record["job"], []).append(record)
    assert len(jobs) <= jobs_at_most, sorted(jobs)
    assert max(most_at_once(runs) for runs in jobs.values()) <= per_job
    assert max(most_at_once(runs) for runs in jobs.values()) > 1  # really packed
    by_run = {r["run"]: r for r in records}
    for row in rows:  # the row's job is the job that ran it, as started_at says
        job = row["job_id"].replace("[", "_").rstrip("]")
        assert by_run[row["run_id"]]["job"].replace(":", "_") == job
        started = (Path(row["run_dir"]) / "started_at").read_text()
        assert f"job={row['job_id']}\n" in started
        assert (Path(row["run_dir"]) / "exit_code").read_text().split() == [
            "0", started.split("\n")[0].partition("=")[2]]


def busy_seconds(spans: list[tuple[float, float]]) -> float:
    """How long at least one of ``spans`` was going (the union's length)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def check_gpu_hours(search) -> None:
    """No accounting storage here: each row's GPU-hours are its measured share, so those of a
    job's runs (one GPU, one CPU each job) add up to the time the job's GPU was busy, as the
    runs' own files time it; status shows the search's total."""
    jobs: dict[str, list[dict]] = {}
    for row in search.results():
        jobs.setdefault(row["job_id"], []).append(row)
    for rows in jobs.values():
        spans = [((Path(r["run_dir"]) / "started_at").stat().st_mtime,
                  (Path(r["run_dir"]) / "exit_code").stat().st_mtime) for r in rows]
        busy = busy_seconds(spans) / 3600
        assert sum(float(r["gpu_hours"]) for r in rows) == pytest.approx(busy, abs=1e-5)
        assert sum(float(r["cpu_hours"]) for r in rows) == pytest.approx(busy, abs=1e-5)
        assert all(float(r["gpu_hours"]) < float(r["wall_time"]) / 3600 for r in rows)
    code, out, err = run_hpsearch(["status", str(search.out_dir)], search.root)
    total = sum(float(r["gpu_hours"]) for r in search.results())
    assert f"GPU-hours {total:.4g}; CPU-hours {total:.4g}\n" in out, out


def test_slurm_twelve_runs_in_at_most_four_jobs_one_gpu_each(tmp_path, slurm_cluster):  # noqa: F811
    s = packed_search(tmp_path, {"x": [float(i) for i in range(12)], "sleep": [1.5]})
    code, _, err = run_hpsearch(cluster_args(s, "--slurm_gres=gpu:1", "--runs_per_job=3"),
                                tmp_path, timeout=180)
    assert code == 0, err
    records = starts(s)
    check_packed(s, records, jobs_at_most=4, per_job=3)
    # each run saw exactly one GPU, one of the two the node has, the one its job was given
    assert all(r["cvd"] in ("0", "1") for r in records), records
    by_job: dict[str, set] = {}
    for record in records:
        by_job.setdefault(record["job"], set()).add(record["cvd"])
    assert all(len(gpus) == 1 for gpus in by_job.values()), by_job
    check_gpu_hours(s)
    (pack,) = (s.out_dir / "packs").iterdir()  # one launch of all twelve runs
    queue = json.loads((pack / "queue.json").read_text())
    assert queue["workers"] == 4 and len(queue["runs"]) == 12
    assert sorted(p.name for p in (pack / "claims").iterdir()) == sorted(
        r["run_id"] for r in s.results())


def test_status_shows_which_job_holds_which_run_and_a_killed_worker_reruns(
        tmp_path, slurm_cluster, procs):  # noqa: F811
    s = packed_search(tmp_path, {"x": [float(i) for i in range(6)], "hold": [True]})
    s.hold.write_text("")
    driver = start_hpsearch(cluster_args(s, "--slurm_gres=gpu:1", "--runs_per_job=3",
                                         "--num_jobs=2"), tmp_path)
    procs.append(driver)
    wait_for(lambda: len(s.starts()) == 6, 60, "six held runs started in two jobs")
    claims = {}
    for path in (s.out_dir / "packs").glob("*/claims/*"):
        claims[path.name] = json.loads(path.read_text())["job"]
    assert len(claims) == 6 and len(set(claims.values())) == 2
    code, out, err = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert code == 0, err
    for job in set(claims.values()):
        line = next(ln for ln in out.splitlines() if f"job {job} " in ln)
        held = [r for r, j in claims.items() if j == job]
        assert line.endswith(f"holds 3 run(s): {' '.join(sorted(held))}")
    victim = sorted(set(claims.values()))[0]
    subprocess.run(["scancel", victim], check=True)
    victims = {r for r, j in claims.items() if j == victim}
    # its three runs run again (a new launch, new job), the other three go on in theirs
    wait_for(lambda: len(s.starts()) == 6 and sum(s.starts().values()) == 9, 60,
             "the cancelled job's runs to start again")
    s.hold.unlink()
    assert driver.wait(timeout=60) == 0, driver.stderr.read()
    assert sorted(s.starts().values()) == [1, 1, 1, 2, 2, 2]
    rows = {r["run_id"]: r for r in s.results()}
    assert {r["status"] for r in rows.values()} == {"finished"}
    assert {r["attempts"] for r in rows.values()} == {"1"}  # a killed job is not the run's fault
    for run_id, row in rows.items():  # the cut start's files wait aside (killed by SIGTERM)
        earlier = Path(row["run_dir"]) / "attempts" / "1" / "exit_code"
        assert earlier.exists() == (run_id in victims)
        if run_id in victims:
            assert earlier.read_text().split()[0] == "143"
            assert row["job_id"] != victim
    assert {rows[r]["job_id"] for r in rows if r not in victims} == set(claims.values()) - {victim}


def test_kill_9_of_the_driver_then_the_same_command_reattaches_to_the_workers(
        tmp_path, slurm_cluster, procs):  # noqa: F811
    s = packed_search(tmp_path, {"x": [float(i) for i in range(6)], "hold": [True]})
    s.hold.write_text("")
    args = cluster_args(s, "--slurm_gres=gpu:1", "--runs_per_job=3", "--num_jobs=2")
    first = start_hpsearch(args, tmp_path)
    procs.append(first)
    wait_for(lambda: len(s.starts()) == 6, 60, "six held runs started")
    first.kill()
    first.wait()
    s.hold.unlink()  # the runs end while no driver watches
    code, _, err = run_hpsearch(args, tmp_path, timeout=120)
    assert code == 0, err
    assert "reattaching to 6 run(s)" in err
    assert sorted(s.starts().values()) == [1] * 6  # each ran once, in the first workers
    assert len(list((s.out_dir / "packs").iterdir())) == 1  # nothing submitted again
    rows = s.results()
    assert {r["status"] for r in rows} == {"finished"} and len({r["job_id"] for r in rows}) == 2


def test_lsf_emulator_packs_twelve_runs_in_at_most_four_jobs(tmp_path, lsf):  # noqa: F811
    s = packed_search(tmp_path, {"x": [float(i) for i in range(12)], "sleep": [1.0]})
    code, out, err = run_hpsearch(cluster_args(s, "--runs_per_job=3", cluster=(
        "--run_cluster", "--scheduler=lsf")), tmp_path, timeout=120)
    assert code == 0, err
    check_packed(s, starts(s), jobs_at_most=4, per_job=3)
    calls = (lsf / "calls.log").read_text().splitlines()
    assert sum(line.startswith("bsub ") for line in calls) == 1


@pytest.mark.parametrize("flags, words", [
    (("--runs_per_job=0", "--run_cluster"), "--runs_per_job=0 is out of range"),
    (("--runs_per_job=3",), "--runs_per_job is for cluster jobs: add --run_cluster"),
    (("--continue_on_timeout=-1", "--run_cluster"), "--continue_on_timeout=-1 is out of range"),
    (("--continue_on_timeout=2",), "--continue_on_timeout is for cluster jobs: add --run_cluster "
     f"--scheduler={scheduler_names()}, or leave it out (local runs have no scheduler time "
     "limit)"),
    (("--walltime_warning=-5", "--run_cluster"), "--walltime_warning=-5.0 is out of range"),
])
def test_bad_packing_flags_are_one_line_errors(tmp_path, flags, words):
    s = write_search(tmp_path, {"x": [1.0]})
    code, out, err = run_hpsearch([a for a in s.args(*flags) if a != "--visible_gpus=-1"]
                                  + ["--scheduler=slurm", "--dry_run"], tmp_path)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not s.out_dir.exists()


def test_dry_run_shows_the_worker_script(tmp_path):
    s = write_search(tmp_path, {"x": [float(i) for i in range(7)]})
    code, out, err = run_hpsearch(cluster_args(s, "--runs_per_job=3", "--num_hours=2",
                                               "--dry_run"), tmp_path)
    assert code == 0, err
    assert "#SBATCH --array=0-2%8\n" in out  # 7 runs, 3 at once in a job: 3 workers
    assert "#SBATCH --signal=B:URG@300\n" in out and "#SBATCH --time=120\n" in out
    assert f" -m hpsearch.worker {s.out_dir}/packs/KEY \"$hps_job\" \"$hps_host\"\n" in out
    assert "hpsearch_run()" not in out and not s.out_dir.exists()
    assert subprocess.run(["bash", "-n", "-c", out]).returncode == 0


def test_worker_places_runs_by_measured_memory_on_the_jobs_gpu(tmp_path):
    """The worker alone, as a job would start it: the job was given GPU 1 of two
    (``CUDA_VISIBLE_DEVICES=1``); the node's GPUs are read through the fake nvidia-smi of
    tests/fakes (no GPU here), whose sims hold 6000 MiB of a 16384 MiB GPU. With
    --allowed_memory=0.5 one run fits at a time, --runs_per_job=3 notwithstanding: the
    admission learned the need from the first run's memory."""
    fakes = Path(__file__).resolve().parent / "fakes"
    key, out = "kw0rker1", tmp_path / "out"
    runs = []
    for i in range(3):
        run_dir = out / "runs" / f"r{i}"
        argv = (sys.executable, str(fakes / "fake_gpu_sim.py"), "--mib", "6000", "--seconds",
                "1", f"--out_dir={run_dir / 'out'}")
        write_run_record(run_dir, {"run_id": f"r{i}", "launch": key}, argv, tmp_path, {})
        runs.append(Run(f"r{i}", i, {}, argv, tmp_path, run_dir, run_dir / "out",
                        launch=key, env={"HPSEARCH_RUN_ID": f"r{i}"}))
    pack = claims.pack_dir(out, key)
    claims.write_queue(pack, claims.Queue(
        key, 3, 1, None, 0, True, {"allowed_load": 1.0, "allowed_memory": 0.5,
                                   "max_num_jobs_per_gpu": 3, "sim_startup_time": 60,
                                   "gpu_memory_per_run": None}, tuple(runs)))
    log = tmp_path / "gpu.log"
    (tmp_path / "state").mkdir()
    env = {**hpsearch_env(), "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}",
           "HPSEARCH_NO_NVML": "1", "FAKE_GPUS": "2x16384", "CUDA_VISIBLE_DEVICES": "1",
           "FAKE_GPU_STATE": str(tmp_path / "state"), "FAKE_GPU_LOG": str(log)}
    done = subprocess.run([sys.executable, "-m", "hpsearch.worker", str(pack), "77_0", "node9"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "GPUs 1 via nvidia-smi" in done.stderr
    events = [json.loads(ln) for ln in log.read_text().splitlines()]
    allocs = [e for e in events if e["event"] == "alloc"]
    assert len(allocs) == 3 and {e["gpu"] for e in allocs} == {1}
    assert max(e["used"] for e in allocs) == 6000  # never two runs on the GPU at once
    for run in runs:
        started = (run.run_dir / "started_at").read_text()
        assert "job=77_0\n" in started and "cuda_visible_devices=1\n" in started
        assert (run.run_dir / "exit_code").read_text() == f"0 {key}\n"
        assert claims.read_claim(pack, run.run_id)["job"] == "77_0"


def test_worker_stops_a_run_at_its_timeout_and_says_why(tmp_path):
    """--timeout holds for each packed run: the worker writes the run's reason, then stops
    it alone (SIGTERM to its process group); the run next to it finishes."""
    key, out = "kt1me0ut", tmp_path / "out"
    runs = []
    for i, seconds in enumerate((30, 0.2)):
        run_dir = out / "runs" / f"t{i}"
        argv = (sys.executable, "-c", f"import time; time.sleep({seconds})")
        write_run_record(run_dir, {"run_id": f"t{i}", "launch": key}, argv, tmp_path, {})
        runs.append(Run(f"t{i}", i, {}, argv, tmp_path, run_dir, run_dir / "out", launch=key))
    pack = claims.pack_dir(out, key)
    claims.write_queue(pack, claims.Queue(key, 2, 1, 1.5, 0, False, {}, tuple(runs)))
    env = {k: v for k, v in hpsearch_env().items() if k != "CUDA_VISIBLE_DEVICES"}
    done = subprocess.run([sys.executable, "-m", "hpsearch.worker", str(pack), "5_0"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    slow, quick = (r.run_dir for r in runs)
    assert (slow / "exit_code").read_text() == f"143 {key} TERM\n"
    assert (slow / "reason").read_text() == "timeout after 1.5s\n"
    assert (quick / "exit_code").read_text() == f"0 {key}\n" and not (quick / "reason").exists()


def test_an_adaptive_strategy_s_packed_launches_fill_whole_jobs(tmp_path, slurm_cluster):  # noqa: F811
    """16 TPE trials, ``--runs_per_job=4 --num_jobs=2``, on the real Slurm: TPE proposes its
    points one at a time as results come in, yet every job runs 4 of them -- the driver
    launches once a whole job's worth of slots is free and of points is computed, instead of
    a job for each point (which would pay a job's start and hold its place for one run)."""
    s = packed_search(tmp_path, {"x": [0.0]})
    (s.sim_dir / "search.yaml").write_text(
        "script: sim.py\nsummary_file: perf.txt\nmetrics: [acc]\nalgorithm: tpe\n"
        "num_trials: 16\nseed: 3\nparameters:\n  x: {method: uniform, low: 0, high: 1}\n"
        "  sleep: 0.3\n")
    code, _, err = run_hpsearch(["--search_file=proj/search.yaml", "--run_cwd=proj",
                                 f"--out_dir={s.out_dir}", *SLURM, "--runs_per_job=4",
                                 "--num_jobs=2"], tmp_path, timeout=300)
    assert code == 0, err
    rows = s.results()
    assert len(rows) == 16 and {r["status"] for r in rows} == {"finished"}, rows
    jobs: dict[str, int] = {}
    for row in rows:
        jobs[row["job_id"]] = jobs.get(row["job_id"], 0) + 1
    assert sorted(jobs.values()) == [4, 4, 4, 4], jobs
