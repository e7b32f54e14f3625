"""The GPU admission policy, driven by a simulated clock and simulated GPUs.

The policy is pure (samples and ``now`` in, a GPU index out), so these tests feed it a
small simulation: runs that allocate their memory some seconds after launch, hold it,
and end. No GPU and no sleeping needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hpsearch.backends.gpus.admission import (
    GpuAdmission,
    GpuLimits,
    parse_mib,
    parse_visible_gpus,
)
from hpsearch.backends.gpus.probe import GpuSample


def sample(index, used, total=16000, util=0.0, processes=None):
    return GpuSample(index, f"GPU {index}", used, total, util, processes or {})


@dataclass
class Proc:
    gpu: int
    mib: int
    alloc_at: float  # memory shows from this instant
    end_at: float


@dataclass
class SimGpus:
    """GPUs whose used memory is the sum of the simulated runs holding memory."""

    totals: list[int]
    other_mib: dict[int, int] = field(default_factory=dict)  # someone else's use
    procs: dict[int, Proc] = field(default_factory=dict)

    def used(self, gpu, now):
        mine = sum(p.mib for p in self.procs.values() if p.gpu == gpu and p.alloc_at <= now)
        return self.other_mib.get(gpu, 0) + mine

    def samples(self, now):
        out = []
        for g, total in enumerate(self.totals):
            holding = {
                pid: p.mib for pid, p in self.procs.items() if p.gpu == g and p.alloc_at <= now
            }
            util = min(1.0, 0.3 * len(holding))
            out.append(GpuSample(g, "sim", self.used(g, now), total, util, holding))
        return out


def run_search(limits, gpus, n_runs, mib, startup, duration, dt=0.25, check=None, need=None):
    """Drive the policy like a backend would, each run declaring ``need`` MiB (None: learn
    it); return (makespan, max jobs seen per GPU)."""
    policy = GpuAdmission(limits)
    pending = list(range(n_runs))
    now, next_pid, max_jobs = 0.0, 1000, 0
    owner: dict[int, str] = {}
    while pending or gpus.procs:
        for pid in [p for p, proc in gpus.procs.items() if proc.end_at <= now]:
            del gpus.procs[pid]
            policy.ended(owner.pop(pid))
        policy.observe(gpus.samples(now), now)
        while pending:
            run_id = f"r{pending[0]}"
            gpu = policy.choose(now, run_id, need)
            if gpu is None:
                break
            pending.pop(0)
            next_pid += 1
            gpus.procs[next_pid] = Proc(gpu, mib, now + startup, now + startup + duration)
            owner[next_pid] = run_id
            policy.launched(gpu, run_id, next_pid, now, need)
        for g in range(len(gpus.totals)):
            jobs = sum(1 for p in gpus.procs.values() if p.gpu == g)
            max_jobs = max(max_jobs, jobs)
            assert jobs <= limits.max_num_jobs_per_gpu
            if check:
                check(g, gpus, now)
        now += dt
        assert now < 10_000, "search never finished"
    return now, max_jobs


def test_no_gpu_exceeds_its_memory_limit_over_a_whole_search():
    limits = GpuLimits(allowed_load=1.0, allowed_memory=0.5, max_num_jobs_per_gpu=3)
    gpus = SimGpus([16000, 16000])

    def within(g, gpus, now):
        assert gpus.used(g, now + 10) <= 0.5 * gpus.totals[g]  # also what is still coming

    makespan, max_jobs = run_search(limits, gpus, 20, 3000, startup=2, duration=5, check=within)
    assert max_jobs == 2  # 3 x 3000 > 8000: the learned need holds the third back
    assert makespan < 20 * 7 / 2  # and the gate lifted early (not 60 s per launch)


def test_known_need_respects_memory_another_user_holds():
    limits = GpuLimits(
        allowed_load=1.0,
        allowed_memory=0.8,
        max_num_jobs_per_gpu=8,
        sim_startup_time=0,  # no gate: the reservations alone keep the limit
    )
    gpus = SimGpus([16000, 16000], other_mib={0: 9000})

    def within(g, gpus, now):
        assert gpus.used(g, now + 10) <= 0.8 * gpus.totals[g]
        if g == 0:  # 9000 + 2 x 2000 > 12800
            assert sum(1 for p in gpus.procs.values() if p.gpu == 0) <= 1

    _, max_jobs = run_search(limits, gpus, 30, 2000, startup=1, duration=3, check=within,
                             need=2000)
    assert max_jobs == 6  # GPU 1: 6 x 2000 <= 12800 < 7 x 2000


def test_reservations_prevent_the_launch_burst_a_single_snapshot_allows():
    snapshot = [sample(0, 0), sample(1, 0)]
    reserving = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=10, sim_startup_time=0))
    snapshot_only = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=10, sim_startup_time=0))
    counts = []
    for policy, need in ((reserving, 4000), (snapshot_only, None)):
        policy.observe(snapshot, 0.0)
        launched = []
        while (gpu := policy.choose(0.0, f"r{len(launched)}", need)) is not None:
            policy.launched(gpu, f"r{len(launched)}", None, 0.0, need)
            launched.append(gpu)
        counts.append(launched)
    assert sorted(counts[0]) == [0, 0, 1, 1]  # 2 x 4000 = 0.5 x 16000 per GPU
    assert len(counts[1]) == 20  # no reservation: the stale snapshot admits 20 runs
    assert "memory 12000/16000" in reserving.refusal(0, 0.0, 4000)


def test_reservation_shrinks_as_the_run_memory_shows():
    policy = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=5))
    policy.observe([sample(0, 0)], 0.0)
    policy.launched(0, "a", 77, 0.0, need=4000)
    assert policy.reserved_mib(0) == 4000
    policy.observe([sample(0, 1500, processes={77: 1500})], 1.0)
    assert policy.reserved_mib(0) == 2500  # 1500 held, 2500 still to come
    policy.observe([sample(0, 5000, processes={77: 5000})], 2.0)
    assert policy.reserved_mib(0) == 0


def test_jobs_per_gpu_cap_holds_and_frees_on_end():
    policy = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=1, sim_startup_time=0))
    policy.observe([sample(0, 0), sample(1, 0)], 0.0)
    for run_id in ("a", "b"):
        policy.launched(policy.choose(0.0), run_id, None, 0.0)
    assert policy.choose(0.0) is None
    assert "--max_num_jobs_per_gpu=1" in policy.refusal(0, 0.0)
    policy.ended("b")
    assert policy.choose(0.0) == policy.gpus_of("a")[0] ^ 1


def test_gate_lifts_early_when_memory_shows_and_other_gpus_never_wait():
    policy = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=2, sim_startup_time=60))
    policy.observe([sample(0, 0), sample(1, 0)], 0.0)
    assert policy.choose(0.0) == 0
    policy.launched(0, "a", 10, 0.0)
    assert policy.choose(0.0) == 1  # GPU 0's gate does not hold GPU 1
    policy.launched(1, "b", 11, 0.0)
    assert policy.choose(0.5) is None
    assert "still starting" in policy.refusal(0, 0.5)
    policy.observe([sample(0, 900, processes={10: 900}), sample(1, 0)], 1.0)
    assert policy.choose(1.0) == 0  # 59 s before sim_startup_time
    policy.ended("b")  # a run that ends also opens its gate
    assert policy.refusal(1, 1.0) is None


def test_gate_lifts_after_sim_startup_time_when_memory_never_shows():
    policy = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=2, sim_startup_time=60))
    policy.observe([sample(0, 0)], 0.0)
    policy.launched(0, "a", 10, 0.0)
    assert policy.choose(59.9) is None
    assert policy.choose(60.0) == 0


def test_visible_gpus_filters_choice():
    policy = GpuAdmission(GpuLimits(visible_gpus=(1, 2), max_num_jobs_per_gpu=4))
    policy.observe([sample(0, 0), sample(1, 6000), sample(2, 3000)], 0.0)
    assert policy.choose(0.0) == 2  # GPU 0 has most free memory but is not visible
    assert policy.refusal(0, 0.0) == "not in --visible_gpus"
    assert policy.refusal(1, 0.0) is None


def test_most_free_memory_wins():
    policy = GpuAdmission(GpuLimits(allowed_memory=1.0))
    policy.observe([sample(0, 8000), sample(1, 2000), sample(2, 9000)], 0.0)
    assert policy.choose(0.0) == 1


def test_several_gpus_are_those_with_most_free_memory_listed_in_ascending_order():
    """A run of 2 GPUs gets the two with most free memory (3 and 1), listed as
    ``CUDA_VISIBLE_DEVICES`` lists GPUs: 1,3."""
    policy = GpuAdmission(GpuLimits(allowed_memory=1.0))
    policy.observe([sample(0, 8000), sample(1, 2000), sample(2, 9000), sample(3, 1000)], 0.0)
    assert policy.choose_many(0.0, count=2) == [1, 3]


def test_load_is_smoothed_over_the_window():
    policy = GpuAdmission(GpuLimits(allowed_load=0.5, load_window=5))
    for t, util in enumerate([0.0, 0.0, 0.0, 0.0, 1.0]):
        policy.observe([sample(0, 0, util=util)], float(t))
    assert policy.choose(5.0) == 0  # one spike (mean 0.2) does not refuse
    for t, util in enumerate([0.9, 0.9, 0.9, 0.9, 0.0]):
        policy.observe([sample(0, 0, util=util)], 10.0 + t)
    assert policy.load(0) == pytest.approx(0.72)
    assert policy.choose(15.0) is None  # one idle reading does not admit
    assert "load 0.72" in policy.refusal(0, 15.0)


def test_need_is_learned_from_peak_process_memory():
    policy = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=4, sim_startup_time=0))
    assert policy.need_mib() == 0
    policy.observe([sample(0, 0)], 0.0)
    policy.launched(0, "a", 5, 0.0)
    policy.observe([sample(0, 2500, processes={5: 2500})], 1.0)
    policy.observe([sample(0, 1800, processes={5: 1800})], 2.0)
    policy.ended("a")
    assert policy.peak_mib("a") == 2500
    assert policy.need_mib() == 2500
    policy.ended("b", peak_mib=3100)  # a peak the backend measured itself
    assert policy.need_mib() == 3100


def test_oom_retry_raises_the_need_and_moves_the_run():
    policy = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=4, sim_startup_time=0))
    policy.observe([sample(0, 0), sample(1, 0)], 0.0)
    policy.launched(0, "a", 5, 0.0)
    policy.observe([sample(0, 3000, processes={5: 3000}), sample(1, 4000)], 1.0)
    policy.ended("a")
    assert policy.oom("a") == 4500  # 1.5 x the 3000 MiB it reached
    assert policy.need_mib("a") == 4500 and policy.need_mib("other") == 3000
    policy.observe([sample(0, 5000), sample(1, 4000)], 2.0)
    assert policy.choose(2.0, "other") == 1  # 4000 + 3000 <= 8000
    assert policy.choose(2.0, "a") is None  # 4000 + 4500 > 8000 on both
    assert policy.oom("a") == 6750
    assert policy.oom("a") == 8000  # capped at allowed_memory x total: still placeable
    assert policy.fits_at_all("a")


def test_oom_with_nothing_known_asks_for_a_whole_allowed_gpu():
    policy = GpuAdmission(GpuLimits(allowed_memory=0.5))
    policy.observe([sample(0, 0, total=16000), sample(1, 0, total=24000)], 0.0)
    assert policy.oom("x") == 12000
    assert policy.choose(0.0, "x") == 1


def test_oom_retry_waits_for_our_unseen_runs_on_the_gpu():
    # b launched with nothing known (reserves 0) and shows no memory yet: the retry of a
    # must not take its GPU on an empty snapshot; once b's memory shows, the sums decide.
    policy = GpuAdmission(GpuLimits(allowed_memory=1.0, max_num_jobs_per_gpu=2,
                                    sim_startup_time=0))
    policy.observe([sample(0, 0, total=8000)], 0.0)
    policy.launched(0, "b", 7, 0.0)
    assert policy.oom("a") == 8000
    assert policy.choose(0.5, "other") == 0  # an ordinary run: start-up gate is 0
    assert policy.choose(0.5, "a") is None
    assert "waits for run b" in policy.refusal(0, 0.5, 8000, after_oom=True)
    policy.observe([sample(0, 2000, total=8000, processes={7: 2000})], 1.0)
    assert policy.choose(1.0, "a") is None  # 2000 + 8000 > 8000
    policy.ended("b")
    policy.observe([sample(0, 0, total=8000)], 2.0)
    assert policy.choose(2.0, "a") == 0


def test_user_need_larger_than_every_gpu_is_reported():
    policy = GpuAdmission(GpuLimits())
    policy.observe([sample(0, 0, total=16000)], 0.0)
    assert not policy.fits_at_all(need=parse_mib("12GiB"))
    assert policy.choose(0.0, need=parse_mib("12GiB")) is None


def test_unknown_memory_total_skips_only_the_memory_rule():
    policy = GpuAdmission(GpuLimits(max_num_jobs_per_gpu=2))
    gb10 = GpuSample(0, "NVIDIA GB10", None, None, 0.0, {})
    policy.observe([gb10], 0.0)
    assert policy.choose(0.0, need=99999) == 0
    policy.launched(0, "a", 1, 0.0, need=99999)
    assert policy.choose(1.0, need=99999) is None  # the gate still holds


def test_no_sample_no_choice():
    policy = GpuAdmission(GpuLimits())
    assert policy.choose(0.0) is None
    assert policy.refusal(0, 0.0) == "no sample yet"


@pytest.mark.parametrize(
    "text,mib",
    [("4GiB", 4096), ("4G", 4096), ("4gb", 4096), ("4096MiB", 4096), ("4096M", 4096),
     ("4096", 4096), ("1.5GiB", 1536), (" 512 MiB ", 512), (2048, 2048), ("", None), (None, None)],
)  # fmt: skip
def test_parse_mib(text, mib):
    assert parse_mib(text) == mib


def test_parse_mib_rejects_with_the_flag_name():
    with pytest.raises(ValueError, match="--gpu_memory_per_run='four' is not a size"):
        parse_mib("four")


def test_parse_visible_gpus():
    assert parse_visible_gpus("0, 2") == (0, 2)
    assert parse_visible_gpus("") is None
    with pytest.raises(ValueError, match="--visible_gpus='a' is not a list"):
        parse_visible_gpus("a")


def test_memory_of_an_ended_run_is_free_before_the_next_sample():
    """A reaped run's memory is free at once: its successor need not wait for a sample."""
    limits = GpuLimits(allowed_load=1.0, allowed_memory=0.5, max_num_jobs_per_gpu=4,
                       sim_startup_time=0)
    policy = GpuAdmission(limits)
    policy.observe([sample(0, 0, total=10000)], now=0.0)
    assert policy.choose(0.0, "a", 3000) == 0
    policy.launched(0, "a", pid=11, now=0.0, need=3000)
    policy.observe([sample(0, 5000, total=10000, processes={11: 3000})], now=1.0)
    assert policy.choose(1.0, "b", 3000) is None  # 5000 used + 3000 needed > 50 %
    policy.ended("a")
    assert policy.choose(1.0, "b", 3000) == 0  # 2000 left by others + 3000 <= 5000
    policy.launched(0, "b", pid=12, now=1.0, need=3000)
    assert policy.choose(1.0, "c", 3000) is None  # b's 3000 is reserved until it shows
    policy.observe([sample(0, 2000, total=10000)], now=2.0)  # b has not allocated yet
    assert policy.choose(2.0, "c", 3000) is None  # a's memory is not subtracted twice
