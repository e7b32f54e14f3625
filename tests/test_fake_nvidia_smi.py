"""The fake nvidia-smi and fake GPU sim themselves (tests/fakes; no GPU here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FAKES = Path(__file__).parent / "fakes"


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "FAKE_GPUS": "16384,8192", "FAKE_GPU_STATE": str(tmp_path)}


def smi(env, *args):
    done = subprocess.run(
        [str(FAKES / "nvidia-smi"), *args], env=env, capture_output=True, text=True
    )
    return done.returncode, done.stdout


def register(state, pid, gpu, mib):
    (Path(state) / f"{pid}.json").write_text(f'{{"gpus": [{gpu}], "mib": {mib}}}')


def test_header_units_and_live_processes_only(env):
    sleepers = [subprocess.Popen(["sleep", "30"]) for _ in range(4)]
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        for proc in sleepers:
            register(env["FAKE_GPU_STATE"], proc.pid, 1, 1000)
        register(env["FAKE_GPU_STATE"], dead.pid, 0, 5000)  # gone: must not count
        rc, out = smi(
            env, "--query-gpu=index,memory.used,memory.total,utilization.gpu", "--format=csv"
        )
        assert rc == 0
        assert out.splitlines() == [
            "index, memory.used [MiB], memory.total [MiB], utilization.gpu [%]",
            "0, 0 MiB, 16384 MiB, 0 %",
            "1, 4000 MiB, 8192 MiB, 100 %",  # 4 x 30 % capped at 100
        ]
        rc, out = smi(env, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
        assert sorted(out.splitlines()) == sorted(f"{p.pid}, 1000" for p in sleepers)
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait()


def test_no_gpus_and_bad_field(env):
    assert smi({**env, "FAKE_GPUS": ""}, "--query-gpu=index", "--format=csv") == (
        6,
        "No devices were found\n",
    )
    rc, out = smi(env, "--query-gpu=index,bogus", "--format=csv,noheader")
    assert rc == 2 and "bogus" in out


def test_sim_runs_then_out_of_memory(env):
    def sim(gpu, mib, seconds):
        script = str(FAKES / "fake_gpu_sim.py")
        cmd = [sys.executable, script, f"--mib={mib}", f"--seconds={seconds}", "--lr=0.1"]
        return subprocess.Popen(cmd, env={**env, "CUDA_VISIBLE_DEVICES": str(gpu)},
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    holder = sim(1, 6000, 30)
    try:
        while "6000" not in smi(env, "--query-gpu=memory.used", "--format=csv,noheader,nounits")[1]:
            assert holder.poll() is None
        loser = sim(1, 3000, 0)
        _, err = loser.communicate(timeout=30)
        assert loser.returncode == 1 and "CUDA out of memory" in err
        fits = sim(0, 3000, 0)
        assert fits.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait()
    # the killed holder left its file behind; its memory is gone all the same
    assert list(Path(env["FAKE_GPU_STATE"]).glob("*.json"))
    assert smi(env, "--query-gpu=memory.used", "--format=csv,noheader,nounits")[1] == "0\n0\n"
