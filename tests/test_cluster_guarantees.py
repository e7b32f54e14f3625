"""Cluster searches through the real CLI: retries really retry while queued, an ambiguous
or unanswered sbatch never submits twice, ``--num_jobs`` holds across arrays, what Ctrl-C
and ``cancel`` say and do, ``--job_setup``. Slurm is the real local cluster; LSF is the
emulator of ``tests/lsf_emulator`` (LSF is proprietary; the emulator speaks IBM's formats).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import hpsearch_cmd, hpsearch_env, wait_for, write_search
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

SLURM = ("--run_cluster", "--scheduler=slurm", "--slurm_gres=", "--slurm_mem=50M")


def flags(search, *extra, cluster=SLURM):
    return ["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={search.out_dir}",
            *cluster, *extra]


def run(search, *extra, env=None, cluster=SLURM, timeout=120):
    return subprocess.run(hpsearch_cmd(flags(search, *extra, cluster=cluster)),
                          cwd=search.root, env=env or hpsearch_env(), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def start(search, *extra, env=None, cluster=SLURM):
    return subprocess.Popen(hpsearch_cmd(flags(search, *extra, cluster=cluster)),
                            cwd=search.root, env=env or hpsearch_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def peak_concurrency(search) -> int:
    edges = sorted((e["t"], 1 if e["ev"] == "start" else -1) for e in search.events())
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def fake_tool(bin_dir: Path, name: str, body: str) -> None:
    """A stand-in for a scheduler command that does ``body`` around the real one."""
    real = shutil.which(name)
    assert real, f"{name} not on PATH"
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body.replace("REAL", real))
    path.chmod(0o755)


def env_with(bin_dir: Path) -> dict[str, str]:
    env = hpsearch_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


@pytest.mark.usefixtures("slurm_cluster")
def test_slurm_retries_run_while_the_earlier_exit_code_waits_aside(tmp_path):
    """Every run fails once; its retry waits 4 s in the queue (``begin=now+4``): the earlier
    attempt's exit_code must not be taken for the retry's."""
    s = write_search(tmp_path, {"x": [float(i) for i in range(6)], "mode": ["flaky"]})
    done = run(s, "--retries=1", "--sbatch_option=begin=now+4", "--fail_fast=0")
    assert done.returncode == 0, done.stderr
    rows = s.results()
    assert len(rows) == 6 and {(r["status"], r["attempts"]) for r in rows} == {("finished", "2")}
    assert sorted(s.starts().values()) == [2] * 6  # each retry really ran
    for row in rows:
        first = Path(row["run_dir"]) / "attempts" / "1"
        assert first.joinpath("exit_code").read_text().startswith("3 ")


def test_lsf_retries_run_while_queued(tmp_path, lsf, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LSF_EMULATOR_DISPATCH_DELAY", "2")
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "mode": ["flaky"]})
    done = run(s, "--retries=1", "--fail_fast=0", cluster=("--run_cluster", "--scheduler=lsf"))
    assert done.returncode == 0, done.stderr
    assert {(r["status"], r["attempts"]) for r in s.results()} == {("finished", "2")}
    assert sorted(s.starts().values()) == [2] * 4


@pytest.mark.usefixtures("slurm_cluster")
def test_num_jobs_is_never_exceeded_across_arrays(tmp_path):
    """Half the runs fail once: their retries go out as new arrays while the first runs."""
    s = write_search(tmp_path, {"x": [float(i) for i in range(8)], "sleep": [1.0],
                                "mode": ["ok"]},
                     conditions=[({"x": [0.0, 2.0, 4.0, 6.0]}, {"mode": ["flaky"]})])
    done = run(s, "--num_jobs=3", "--retries=1", "--fail_fast=0")
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in s.results()} == {"finished"}
    assert peak_concurrency(s) <= 3


@pytest.mark.usefixtures("slurm_cluster")
def test_sbatch_that_queued_but_timed_out_is_not_submitted_again(tmp_path):
    bin_dir = tmp_path / "bin"
    marker = tmp_path / "timed_out_once"
    fake_tool(bin_dir, "sbatch", f'out=$(REAL "$@") || exit $?\n'
              f'if [ ! -e {marker} ]; then touch {marker}\n'
              '  echo "sbatch: error: Batch job submission failed: Socket timed out on '
              'send/recv operation" >&2; exit 1; fi\necho "$out"\n')
    s = write_search(tmp_path, {"x": [1.0, 2.0, 3.0]})
    done = run(s, env=env_with(bin_dir))
    assert done.returncode == 0, done.stderr
    assert marker.exists()
    assert sorted(s.starts().values()) == [1, 1, 1]


@pytest.mark.usefixtures("slurm_cluster")
def test_sbatch_answering_late_while_the_driver_is_killed_submits_once(tmp_path, procs):
    bin_dir = tmp_path / "bin"
    log = tmp_path / "sbatch_calls"
    fake_tool(bin_dir, "sbatch", f'echo call >> {log}\nout=$(REAL "$@") || exit $?\n'
              f'[ "$(wc -l < {log})" -gt 1 ] || sleep 30\necho "$out"\n')
    s = write_search(tmp_path, {"x": [1.0, 2.0, 3.0], "sleep": [1.0]})
    driver = start(s, env=env_with(bin_dir))
    procs.append(driver)
    wait_for(lambda: log.exists() and len(s.starts()) == 3, timeout=60,
             what="the array running while sbatch has not answered")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    done = run(s, env=env_with(bin_dir))
    assert done.returncode == 0, done.stderr
    assert "left unanswered" in done.stderr
    assert len(log.read_text().splitlines()) == 1  # never submitted again
    assert sorted(s.starts().values()) == [1, 1, 1]


@pytest.mark.usefixtures("slurm_cluster")
def test_ctrl_c_says_what_stays_queued_and_status_tells_queued_from_running(tmp_path, procs):
    s = write_search(tmp_path, {"x": [1.0, 2.0], "sleep": [600]})
    driver = start(s, "--num_jobs=1")
    procs.append(driver)
    journal = s.out_dir / "journal.jsonl"
    wait_for(lambda: journal.exists() and '"ev":"submit"' in journal.read_text(), 30,
             "the submission")
    wait_for(lambda: len(s.starts()) == 1, 30, "the first run started")
    status = subprocess.run(hpsearch_cmd(["status", str(s.out_dir)]), cwd=tmp_path,
                            env=hpsearch_env(), capture_output=True, text=True, timeout=30)
    assert "1 running" in status.stdout and "1 queued" in status.stdout, status.stdout
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=30) == 130
    err = driver.stderr.read()
    assert "2 job(s) stay on slurm (1 queued, 1 running)" in err, err
    assert f"hpsearch cancel {s.out_dir}" in err
    done = subprocess.run(hpsearch_cmd(["cancel", str(s.out_dir)]), cwd=tmp_path,
                          env=hpsearch_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "cancelled 2 run(s)" in done.stdout, done.stderr


@pytest.mark.usefixtures("slurm_cluster")
def test_cancel_checks_for_scancel_before_stopping_the_driver(tmp_path, procs):
    s = write_search(tmp_path, {"x": [1.0], "sleep": [600]})
    driver = start(s)
    procs.append(driver)
    journal = s.out_dir / "journal.jsonl"
    wait_for(lambda: journal.exists() and '"ev":"submit"' in journal.read_text(), 30,
             "the submission")
    env = hpsearch_env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "scancel").exists())
    done = subprocess.run(hpsearch_cmd(["cancel", str(s.out_dir)]), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "scancel is not on PATH" in done.stderr, done.stderr
    assert driver.poll() is None  # the driver was left alone
    done = subprocess.run(hpsearch_cmd(["cancel", str(s.out_dir)]), cwd=tmp_path,
                          env=hpsearch_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert driver.wait(timeout=30) == 143


@pytest.mark.usefixtures("slurm_cluster")
def test_job_setup_lines_and_files_run_before_every_run(tmp_path):
    setup = tmp_path / "setup.sh"
    setup.write_text("export FROM_FILE=yes\n")
    s = write_search(tmp_path, {"x": [1.0]})
    with open(s.sim_dir / "sim.py", "a") as f:
        f.write('print("SETUP", os.environ.get("FROM_FLAG"), os.environ.get("FROM_FILE"))\n')
    done = run(s, "--job_setup=export FROM_FLAG=1", f"--job_setup=@{setup}")
    assert done.returncode == 0, done.stderr
    (row,) = s.results()
    assert "SETUP 1 yes" in (Path(row["run_dir"]) / "stdout.log").read_text()
    script = next((s.out_dir / "slurm_logs" / "scripts").glob("*.sh")).read_text()
    assert "\nexport FROM_FLAG=1\n" in script and "\nexport FROM_FILE=yes\n" in script


@pytest.mark.usefixtures("slurm_cluster")
def test_wrap_takes_its_own_partition_and_no_gpu(tmp_path):
    s = write_search(tmp_path, {"x": [1.0]})
    done = subprocess.run(hpsearch_cmd(["wrap", "--driver_partition=debug", "--driver_mem=1G",
                                        *flags(s, "--slurm_gres=gpu:1",
                                               "--slurm_partition=gpus",
                                               "--sbatch_option=gpus-per-node=1")]),
                          cwd=s.root, env=hpsearch_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    head = [ln for ln in done.stdout.splitlines() if ln.startswith("#SBATCH")]
    assert "#SBATCH --partition=debug" in head and "#SBATCH --mem=1G" in head, head
    assert not any("gres" in ln or "gpus" in ln for ln in head), head
    assert "--slurm_gres=gpu:1" in done.stdout  # the runs keep theirs


def test_the_job_name_of_a_cluster_launch_carries_its_key(tmp_path, lsf):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2]})
    done = run(s, cluster=("--run_cluster", "--scheduler=lsf"))
    assert done.returncode == 0, done.stderr
    (script,) = (s.out_dir / "lsf_logs" / "scripts").glob("*.sh")
    text = script.read_text()
    key = text.split("run_launch=", 1)[1].split()[0].strip("'")
    assert key.startswith("k") and f"-{key}[1-2]" in text
    for row in s.results():  # and every run's files carry it
        assert (Path(row["run_dir"]) / "exit_code").read_text().split() == ["0", key]
