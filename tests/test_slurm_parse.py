"""Parsers of Slurm output, on the text Slurm 22.05 printed (tests/data/slurm/), and the
directive building/validation (pure, no cluster)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hpsearch.backends.slurm import parse as sp
from hpsearch.backends.slurm.backend import render_driver_script, slurm_directives, time_minutes
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import driver_options

DATA = Path(__file__).resolve().parent / "data" / "slurm"


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_sbatch_parsable():
    assert sp.parse_sbatch_parsable(text("sbatch_parsable_array.txt")) == "2"
    assert sp.parse_sbatch_parsable("1234;cluster_a\n") == "1234"
    with pytest.raises(ValueError):
        sp.parse_sbatch_parsable("")


def test_squeue_mixed_array():
    states = sp.parse_squeue(text("squeue_array_mixed.txt"))
    assert states["2_0"] == sp.JobState("COMPLETED", "None")
    assert states["2_1"] == sp.JobState("FAILED", "NonZeroExitCode")
    assert states["2_3"].state == "CANCELLED"
    assert states["2_7"] == sp.JobState("PENDING", "JobArrayTaskLimit")
    assert states["2_2"].state == "RUNNING" and not states["2_2"].final
    assert len(states) == 8
    assert states["2_1"].final and states["2_3"].final


def test_squeue_timeout():
    states = sp.parse_squeue(text("squeue_array_timeout.txt"))
    assert states["2_2"] == sp.JobState("TIMEOUT", "TimeLimit")
    assert states["2_2"].final


def test_squeue_array_ranges_and_unsplit_arrays():
    pending = sp.parse_squeue(text("squeue_pending_without_array_flag.txt"))
    assert sorted(pending) == sorted(f"49_{i}" for i in range(10))
    assert pending["49_9"] == sp.JobState("PENDING", "JobArrayTaskLimit")
    unsplit = sp.parse_squeue(text("squeue_cancelled_unsplit_array.txt"))
    assert sp.task_state(unsplit, "47_1") == sp.JobState("CANCELLED", "None")
    assert sp.task_state(unsplit, "48_1") is None
    held = sp.parse_squeue(text("squeue_cancelled_pending_array.txt"))
    assert sp.task_state(held, "43_3") == sp.JobState("CANCELLED", "JobHeldUser")


def test_squeue_unknown_job():
    assert sp.parse_squeue(text("squeue_unknown_job.stdout.txt")) == {}
    assert sp.squeue_knows_none(text("squeue_unknown_job.stderr.txt"))
    assert not sp.squeue_knows_none(text("sbatch_error_socket_timeout.txt"))


def test_scontrol_config_limits():
    config = sp.parse_scontrol_config(text("scontrol_show_config.txt"))
    assert sp.config_int(config, "MaxArraySize", 1) == 1001
    assert sp.config_int(config, "MaxJobCount", 1) == 10000
    assert sp.config_int(config, "MinJobAge", 1) == 600
    assert sp.config_int(config, "NoSuchKey", 7) == 7


@pytest.mark.parametrize("name, kind, line", [
    ("sbatch_error_qos_submit_limit.txt", "refused",
     "Batch job submission failed: Job violates accounting/QOS policy (job submit limit, "
     "user's size and/or time limits)"),
    ("sbatch_error_socket_timeout.txt", "unclear",
     "Batch job submission failed: Socket timed out on send/recv operation"),
    ("sbatch_error_invalid_partition.txt", None,
     "Batch job submission failed: Invalid partition name specified"),
    ("sbatch_error_array_too_large.txt", None,
     "Batch job submission failed: Invalid job array specification"),
    ("sbatch_error_node_config.txt", None,
     "Batch job submission failed: Requested node configuration is not available"),
    ("sbatch_error_unrecognized_option.txt", None, "unrecognized option '--bogus-opt=1'"),
    ("sbatch_error_time.txt", None, "Invalid --time specification"),
])
def test_sbatch_errors(name, kind, line):
    stderr = text(name)
    assert sp.sbatch_failure_kind(stderr) == kind
    assert sp.sbatch_error_line(stderr) == line


def test_array_ranges():
    assert sp.array_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert sp.array_ranges([4]) == "4"


def options(**kw) -> SearchOptions:
    kw.setdefault("out_dir", Path("/tmp/o"))
    return SearchOptions(run_cwd=Path("/tmp"), python=sys.executable, run_cluster=True,
                         scheduler="slurm", **kw)


def test_directives_from_flags():
    assert slurm_directives(options(num_hours=4, slurm_partition="gpu", slurm_qos="long",
                                    slurm_constraint="a100|v100")) == [
        "--time=240", "--mem=8G", "--gres=gpu:1", "--partition=gpu", "--qos=long",
        "--constraint='a100|v100'"]
    assert time_minutes(0.5) == 30 and time_minutes(0.001) == 1 and time_minutes(1.01) == 61


def test_empty_value_omits_directive():
    assert slurm_directives(options(slurm_gres="", slurm_mem="", num_hours=1)) == ["--time=60"]


def test_extra_options_add_and_replace():
    got = slurm_directives(options(num_hours=1, slurm_mem="", slurm_gres="",
                                   sbatch_options=("mem_per_cpu=2G", "--exclusive",
                                                   "time=0:01:00")))
    assert got == ["--time=0:01:00", "--mem-per-cpu=2G", "--exclusive"]


def test_unknown_option_lists_close_matches():
    with pytest.raises(ValueError) as err:
        slurm_directives(options(sbatch_options=("mem-per-gpus=10G",)))
    message = str(err.value)
    assert "\n" not in message
    assert "no option --mem-per-gpus" in message and "--mem-per-gpu" in message


def test_reserved_option_refused():
    with pytest.raises(ValueError, match="sets --array itself"):
        slurm_directives(options(sbatch_options=("array=0-3",)))


def test_driver_script_has_no_gpu_request(tmp_path):
    runs = options(num_hours=2, out_dir=tmp_path, slurm_partition="gpu",
                   sbatch_options=("gres=gpu:2", "gpus-per-node=2", "account=lab"),
                   job_setup=("module load cuda",))
    own = driver_options(runs, 48, "4G", "cpu")
    script = render_driver_script(own, [sys.executable, "-m", "hpsearch", "--grid_module=a b"],
                                  tmp_path)
    assert "#SBATCH --time=2880" in script and "#SBATCH --mem=4G" in script
    assert "--gres" not in script and "gpus" not in script
    assert "#SBATCH --partition=cpu" in script and "#SBATCH --account=lab" in script
    assert "\nmodule load cuda\n" in script
    assert "'--grid_module=a b'" in script
