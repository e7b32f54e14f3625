"""A run carries its own resources (hpsearch/runs/model.py, hpsearch/backends/__init__.py), and
the GPU backend admits each run by what its resources say, not by the search's options.

The GPU backend is the real one (its sampler, the admission, the job wrapper, real processes)
over a GPU source that reports one fake GPU: this machine has none.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import pytest

from hpsearch.backends.gpus.admission import GpuLimits
from hpsearch.backends.gpus.backend import GpuBackend
from hpsearch.backends.gpus.probe import GpuSample
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import resources_of
from hpsearch.runs.files import read_exit, read_start, write_run_record
from hpsearch.runs.model import Resources, Run, make_run
from hpsearch.spec.invocation import parse_script_command

GIB = 1024 ** 3


def options(**flags) -> SearchOptions:
    return SearchOptions(out_dir=Path("out"), run_cwd=Path("."), python=sys.executable, **flags)


@pytest.mark.parametrize(("flags", "expected"), [
    ({}, Resources(gpus=1, cpus=1, memory=None, nodes=1, time_limit=None)),
    ({"visible_gpus": "-1"}, Resources(gpus=0)),
    ({"gpu_memory_per_run": "4GiB"}, Resources(gpus=1, gpu_memory_mib=4096)),
    ({"run_cluster": True, "scheduler": "slurm"},  # --slurm_gres gpu:1 --slurm_mem 8G, 24 h
     Resources(gpus=1, cpus=1, memory=8 * GIB, nodes=1, time_limit=24 * 3600.0)),
    ({"run_cluster": True, "scheduler": "slurm", "slurm_gres": "", "slurm_mem": "500",
      "num_hours": 0.5}, Resources(gpus=0, memory=500 * 1024 ** 2, time_limit=1800.0)),
    ({"run_cluster": True, "scheduler": "slurm", "slurm_gres": "gpu:a100:2",
      "sbatch_options": ("cpus-per-task=4", "nodes=2", "time=1-0:00:00")},
     Resources(gpus=2, cpus=4, memory=8 * GIB, nodes=2, time_limit=86400.0)),
    ({"run_cluster": True, "scheduler": "lsf"},  # -R "rusage[mem=8000, ngpus_excl_p=1]"
     Resources(gpus=1, cpus=1, memory=None, nodes=1, time_limit=24 * 3600.0)),
    ({"run_cluster": True, "scheduler": "lsf", "lsf_gpu": "num=2:mode=shared",
      "bsub_options": ("W=1:30",)}, Resources(gpus=2, time_limit=5400.0)),
], ids=["local_gpu", "cpu_only", "gpu_memory", "slurm_defaults", "slurm_no_gpu",
        "slurm_sbatch_options", "lsf_defaults", "lsf_gpu"])
def test_a_run_carries_todays_defaults(tmp_path, flags, expected):
    """A run built for a search's flags carries what the flags ask each run's job for, with
    today's defaults (1 GPU, --slurm_mem 8G, --num_hours 24; no GPU with --visible_gpus=-1)."""
    command = parse_script_command("train.py", tmp_path, check=False)
    run = make_run("r1", 0, {"lr": 0.1}, None, out_dir=tmp_path, run_cwd=tmp_path,
                   python=sys.executable, command=command, out_arg="out_dir",
                   resources=resources_of(options(**flags)))
    assert run.resources == expected


class OneBusyGpu:
    """One 16000 MiB GPU that is fully loaded: it refuses every run that needs a GPU."""

    description = "a fake GPU"

    def __init__(self, used_mib: int = 0, load: float = 1.0) -> None:
        self.used_mib, self.load = used_mib, load

    def sample(self, indices=None) -> list[GpuSample]:
        return [GpuSample(0, "fake", self.used_mib, 16000, self.load, {})]


def a_run(tmp_path: Path, name: str, resources: Resources) -> Run:
    run_dir = tmp_path / "runs" / name
    argv = (sys.executable, "-c", "pass")
    write_run_record(run_dir, {"run_id": name}, argv, tmp_path, {})
    return Run(name, 0, {}, argv, tmp_path, run_dir, run_dir / "out", launch="k1",
               resources=resources)


def drive(backend: GpuBackend, run_ids: set[str]) -> None:
    deadline = time.monotonic() + 60
    ended: set[str] = set()
    while ended != run_ids:
        assert time.monotonic() < deadline, f"still running: {run_ids - ended}"
        backend.wait(1.0)
        ended |= {e.run_id for e in backend.poll()}


def test_gpu_backend_starts_a_run_needing_no_gpu_without_one(tmp_path):
    """With the only GPU fully loaded, a run whose resources ask no GPU starts anyway, on
    a slot with no GPU visible; one asking a GPU waits."""
    backend = GpuBackend(OneBusyGpu(load=1.0), GpuLimits(), num_jobs=4, say=lambda _: None)
    try:
        cpu = a_run(tmp_path, "cpu", Resources(gpus=0))
        gpu = a_run(tmp_path, "gpu", Resources(gpus=1))
        assert list(backend.submit([gpu, cpu], "k1")) == ["cpu"]
        drive(backend, {"cpu"})
        assert read_exit(cpu.run_dir).exit_code == 0
        assert read_start(cpu.run_dir).cuda_visible_devices == ""
    finally:
        backend.close()


def test_gpu_backend_reserves_the_gpu_memory_a_run_asks_for(tmp_path):
    """An idle 16000 MiB GPU with --allowed_memory=0.5: a run asking 12000 MiB is refused,
    one asking 1000 MiB starts on it, whatever the backend was told of runs in general."""
    limits = GpuLimits(allowed_load=1.0, allowed_memory=0.5, sim_startup_time=0)
    backend = GpuBackend(OneBusyGpu(load=0.0), limits, num_jobs=4, say=lambda _: None,
                         resources=Resources(gpu_memory_mib=100))
    try:
        big = a_run(tmp_path, "big", Resources(gpu_memory_mib=12000))
        small = a_run(tmp_path, "small", Resources(gpu_memory_mib=1000))
        assert list(backend.submit([big, small], "k1")) == ["small"]
        assert backend.policy.reserved_mib(0) == 1000
        drive(backend, {"small"})
        assert read_start(small.run_dir).cuda_visible_devices == "0"
    finally:
        backend.close()


def test_a_restarted_gpu_backend_reserves_what_an_adopted_run_asks_for(tmp_path):
    """A driver restarted while a run goes on adopts it on its GPU with the GPU memory the
    run's resources name, reserved until the run shows it (not a need learned anew)."""
    limits = GpuLimits(allowed_load=1.0, allowed_memory=0.5, sim_startup_time=0)
    first = GpuBackend(OneBusyGpu(load=0.0), limits, num_jobs=4, say=lambda _: None)
    run_dir = tmp_path / "runs" / "long"
    argv = (sys.executable, "-c", "import time; time.sleep(60)")
    write_run_record(run_dir, {"run_id": "long"}, argv, tmp_path, {})
    run = Run("long", 0, {}, argv, tmp_path, run_dir, run_dir / "out", launch="k1",
              resources=Resources(gpu_memory_mib=6000))
    job = first.submit([run], "k1")["long"]
    first.close()  # the driver is gone; its run is not
    second = GpuBackend(OneBusyGpu(load=0.0), limits, num_jobs=4, say=lambda _: None)
    try:
        assert second.reattach({"long": (run, job)}) == []
        assert second.policy.reserved_mib(0) == 6000
    finally:
        second.cancel()
        second.close()


# -- declarations (hpsearch/spec/resources.py) and what each run gets (engine/placement.py) --
def test_rules_pick_each_runs_resources_first_match_wins_and_flags_win_over_them():
    """A list of rules: the first whose ``when`` matches gives its keys (a list of values
    matches any of them), keys it leaves out keep the base; a run no rule matches keeps the
    base; ``--*_per_run`` flags set their key for every run, over the rules."""
    from hpsearch.engine.placement import ResourcePlan
    from hpsearch.spec.resources import ResourceOptions, parse_resources

    rules = parse_resources([{"when": {"model": ["large", "xl"]}, "gpus": 4, "mem": "64G"},
                             {"when": {"model": "large"}, "gpus": 8},
                             {"when": {"lr": 0.1}, "cpus": 2}], "resources", ["model", "lr"])
    plan = ResourcePlan(Resources(gpus=1, memory=8 * GIB), rules)
    assert plan.of({"model": "xl", "lr": 0.1}) == Resources(gpus=4, memory=64 * GIB)
    assert plan.of({"model": "large", "lr": 0.1}).gpus == 4
    assert plan.of({"model": "small", "lr": 0.1}) == Resources(gpus=1, cpus=2, memory=8 * GIB)
    assert plan.of({"model": "small", "lr": 0.2}) == Resources(gpus=1, memory=8 * GIB)
    flags = ResourceOptions(gpus_per_run=2, mem_per_run="512M").shape()
    plan = ResourcePlan(Resources(), rules, flags)
    assert plan.of({"model": "xl", "lr": 0.1}) == Resources(gpus=2, memory=512 * 1024 ** 2)
    assert {r.gpus for r in plan.possible()} == {2}
    everyone = parse_resources({"gpus": 0, "cpus": 3, "nodes": 2}, "resources", ["lr"])
    assert ResourcePlan(Resources(), everyone).of({"lr": 1}) == Resources(gpus=0, cpus=3,
                                                                            nodes=2)


def test_slurm_shape_directives_replace_only_what_the_shape_changes():
    """An array of a declared shape gets hpsearch's directive for each field it changes, in
    place of every option of the flags asking for the same (the GPU type the flags name
    stays); the rest stays as the flags gave it; runs of the flags' own shape keep the flags'
    directives exactly."""
    from hpsearch.backends.slurm.backend import resource_directives, shape_directives

    flags = ["--time=1440", "--mem=8G", "--gres=gpu:a100:1", "--partition=gpu",
             "--mem-per-gpu=4G"]
    base = Resources(gpus=1, memory=8 * GIB, time_limit=86400.0)
    assert shape_directives(flags, base, base, resource_directives) == flags
    two = Resources(gpus=2, cpus=8, memory=8 * GIB, time_limit=86400.0)
    assert shape_directives(flags, base, two, resource_directives) == [
        "--time=1440", "--mem=8G", "--partition=gpu", "--mem-per-gpu=4G",
        "--gres=gpu:a100:2", "--cpus-per-task=8"]
    none = Resources(gpus=0, memory=64 * GIB, time_limit=86400.0)
    assert shape_directives(flags, base, none, resource_directives) == [
        "--time=1440", "--partition=gpu", "--mem=65536M"]
    assert resource_directives(Resources(gpus=2, cpus=4, memory=GIB + 1, nodes=2,
                                         time_limit=61.0)) == [
        "--gres=gpu:2", "--cpus-per-task=4", "--mem=1025M", "--nodes=2", "--time=2"]


def test_fairness_holds_gpus_once_a_large_run_waited_longer_than_the_median():
    """The rule, on a clock: a 2-GPU run refused at t=0; runs started meanwhile end after
    1, 3 and 10 s (median 3): at t=2.9 it does not starve yet, at t=11 it does; a run started
    before it began waiting does not count; once it starts it holds nothing."""
    from hpsearch.backends.gpus.fairness import Fairness

    fair = Fairness()
    fair.started("before", -5.0)
    fair.refused("large", 2, 0.0)
    fair.refused("small", 1, 0.0)  # a 1-GPU run never waits for several GPUs
    assert list(fair.waiting) == ["large"]
    fair.ended("before", 0.5)
    assert fair.starving(0.6) is None  # started before it waited: not a duration that counts
    for name, start, end in (("a", 0.1, 1.1), ("b", 0.2, 3.2), ("c", 0.3, 10.3)):
        fair.started(name, start)
        fair.ended(name, end)
    assert fair.starving(2.9) is None
    assert fair.starving(10.5) == ("large", 2)
    fair.hold("large", [0, 1])
    assert fair.blocked("other") == (0, 1) and fair.blocked("large") == ()
    fair.started("large", 11.0)
    assert fair.blocked("other") == () and fair.waiting == {}


def test_a_gpu_full_of_our_runs_hurries_no_sample_when_a_run_ended(tmp_path):
    """A run ended and the next took its place: the GPU holds --max_num_jobs_per_gpu of our
    runs again, which no sample can change, so the backend does not hurry the sampler's
    next nvidia-smi poll (two processes of 50-300 ms, beside the runs starting)."""
    limits = GpuLimits(allowed_load=1.0, max_num_jobs_per_gpu=1, sim_startup_time=0)
    backend = GpuBackend(OneBusyGpu(load=0.0), limits, num_jobs=4, say=lambda _: None)
    hurried: list[bool] = []
    backend.sampler.hurry = lambda: hurried.append(True)  # type: ignore[method-assign]
    try:
        first = a_run(tmp_path, "first", Resources(gpus=1))
        assert list(backend.submit([first], "k1")) == ["first"]
        drive(backend, {"first"})
        assert backend.room() == 1
        second = a_run(tmp_path, "second", Resources(gpus=1))
        second = dataclasses.replace(second, argv=(sys.executable, "-c",
                                                   "import time; time.sleep(60)"))
        assert list(backend.submit([second], "k2")) == ["second"]
        assert backend.room() == 0
        assert hurried == []
    finally:
        backend.cancel()
        backend.close()
