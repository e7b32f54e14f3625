"""The Grid Engine parsers and directives on text captured from the real gridengine 8.1.9
of scripts/sge/start.sh (tests/data/sge/: qsub -terse, qstat -xml, qacct -j, qdel, qconf)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.backends.cluster.backend import ClusterSettings
from hpsearch.backends.sge import parse as gp
from hpsearch.backends.sge.backend import (
    ENDING,
    SgeBackend,
    SgeSettings,
    hms,
    memory_bytes,
    qsub_option_directives,
    resource_directives,
    rt_seconds,
    sge_directives,
    time_limit_of,
)
from hpsearch.backends.sge.options import SgeJob
from hpsearch.runs.model import Resources

DATA = Path(__file__).parent / "data" / "sge"


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_qsub_terse_answers():
    assert gp.parse_qsub_terse(text("qsub_terse_array.txt")) == "14"
    assert gp.parse_qsub_terse(text("qsub_terse_job.txt")) == "15"
    assert gp.parse_qsub_terse("a JSV note\n2.1-4:1\n") == "2"
    with pytest.raises(ValueError, match="no job id"):
        gp.parse_qsub_terse(text("qsub_unknown_resource.txt"))


def test_qstat_xml_lists_running_tasks_and_expands_pending_ranges():
    jobs = gp.parse_qstat_xml(text("qstat.xml"))
    states = gp.task_states(jobs)
    assert states["14.1"] == states["14.2"] == "r"
    assert {states[f"14.{t}"] for t in range(3, 11)} == {"qw"}
    assert "14.11" not in states
    assert states["15"] == "r"  # a job that is no array
    assert {j.name for j in jobs if j.number == "14"} == {"hps-capture"}
    with pytest.raises(ValueError, match="no XML"):
        gp.parse_qstat_xml("error: commlib error: got select error (Connection refused)")


@pytest.mark.parametrize("field, tasks", [("3", (3,)), ("3,4", (3, 4)), ("5-9:2", (5, 7, 9)),
                                          ("1-3:1,7", (1, 2, 3, 7)), ("", ())])
def test_task_ranges(field, tasks):
    assert gp.task_ids(field) == tasks


def test_qacct_records_and_why_jobs_ended():
    array = gp.parse_qacct(text("qacct_array.txt"))
    assert set(array) == {f"14.{t}" for t in range(1, 11)}
    assert array["14.3"].exit_status == 3 and array["14.3"].failed == 0
    assert array["14.3"].wallclock >= 20 and array["14.3"].slots == 1
    assert gp.classify_qacct(array["14.3"]) == "DONE"  # by itself: its exit file has the 3
    (limit,) = gp.parse_qacct(text("qacct_h_rt.txt")).values()
    assert (limit.failed, limit.exit_status, limit.category) == (37, 137, "-l h_rt=3")
    assert gp.classify_qacct(limit) == "TIMEOUT"
    deleted = gp.parse_qacct(text("qacct_deleted.txt"))
    assert list(deleted) == ["16"] and gp.classify_qacct(deleted["16"]) == "killed"
    assert gp.classify_qacct(gp.QacctRecord(0, "", 0, 1.0, 1, "NONE")) == "DONE"
    never_ran = gp.QacctRecord(26, "opening input/output file", 0, 0.0, 1, "NONE")
    assert gp.classify_qacct(never_ran) == "failed 26: opening input/output file"
    assert gp.parse_qacct("error: job id 99 not found\n") == {}


def test_qdel_lines_that_are_no_failure():
    assert gp.error_lines(text("qdel_mixed.txt")) == []
    assert gp.error_lines("error: commlib error: got select error (Connection refused)\n")


def test_qsub_refusals_that_pass_and_those_that_do_not():
    assert gp.qsub_error(text("qsub_unknown_resource.txt")) == (
        'Unable to run job: unknown resource "nosuch"')
    assert not gp.qsub_retryable(text("qsub_unknown_resource.txt"))
    assert gp.qsub_retryable('unable to contact qmaster using port 6444 on host "localhost"')
    assert gp.qsub_retryable("Unable to run job: job rejected: Only 100 jobs are allowed per "
                             "user (current job count: 100)")
    assert gp.qsub_unclear("Unable to run job: Error reading answer list from qmaster\n"
                           "Exiting.\n")
    assert not gp.qsub_unclear(text("qsub_unknown_resource.txt"))


def test_max_aj_tasks_from_qconf():
    assert gp.parse_max_aj_tasks(text("qconf_sconf.txt")) == 75000
    assert gp.parse_max_aj_tasks("max_aj_tasks                 500\n") == 500
    assert gp.parse_max_aj_tasks("max_aj_tasks 0\n") == gp.DEFAULT_MAX_AJ_TASKS


def test_hours_of_a_task_from_qacct():
    """``ru_wallclock`` times the category's ``gpu=1`` and the 2 slots of a task that ran
    2 s (captured from a search with ``--sge_gpus=1 --sge_cpus=2``); no GPU request: none."""
    (record,) = gp.parse_qacct(text("qacct_gpu.txt")).values()
    assert gp.qacct_usage(record) == {"gpu_hours": round(2 / 3600, 6),
                                      "cpu_hours": round(4 / 3600, 6)}
    assert gp.qacct_usage(gp.parse_qacct(text("qacct_array.txt"))["14.1"]) == {
        "gpu_hours": 0.0, "cpu_hours": round(20 / 3600, 6)}


def test_accounting_and_its_flush_time_from_qconf():
    assert gp.parse_reporting(text("qconf_sconf.txt")) == (True, 1.0)
    assert gp.parse_reporting("reporting_params accounting=false reporting=false \\\n"
                              "    flush_time=00:01:30 joblog=false\n") == (False, 90.0)
    assert gp.parse_reporting("") == (True, gp.DEFAULT_FLUSH_TIME)


def test_resource_directives_of_a_run_shape():
    shape = Resources(gpus=1, cpus=4, memory=8 * 1024 ** 3, time_limit=3600)
    assert resource_directives(shape) == ["-pe smp 4", "-l h_vmem=2048M", "-l gpu=1",
                                          "-l h_rt=1:00:00"]
    assert resource_directives(shape, pe="threads")[0] == "-pe threads 4"
    assert resource_directives(Resources(gpus=0, cpus=1)) == []
    assert resource_directives(Resources(gpus=0, memory=500 * 1024 ** 2,
                                         time_limit=5400.5)) == ["-l h_vmem=500M",
                                                                 "-l h_rt=1:30:01"]


def test_times_and_sizes():
    assert hms(5400) == "1:30:00" and hms(24 * 3600) == "24:00:00" and hms(0.2) == "0:00:01"
    assert rt_seconds("1:30:00") == 5400 and rt_seconds("90") == 90 and rt_seconds("x") is None
    assert memory_bytes("8G") == 8 * 1024 ** 3 and memory_bytes("500m") == 500 * 1024 ** 2
    assert memory_bytes("") is None and memory_bytes("lots") is None
    assert time_limit_of(["-l gpu=1", "-l h_rt=1:00:00", "-l mem=1G,h_rt=0:10:00"]) == 600


def test_qsub_option_items_become_directives():
    job = SgeJob(qsub_options=("A=lab", "-pe=mpi 8", "R", "l=h_vmem=4G,tmp=10G"))
    assert qsub_option_directives(job) == ["-A lab", "-pe mpi 8", "-R",
                                           "-l h_vmem=4G,tmp=10G"]


@pytest.mark.parametrize("item, words", [("N=mine", "sets -N itself"),
                                         ("t=1-5", "sets -t itself"),
                                         ("A='lab'", "quotes"), ("A=", "empty"),
                                         ("1x=2", "KEY=VALUE")])
def test_bad_qsub_options_are_one_line(item, words):
    with pytest.raises(ValueError, match=words) as info:
        qsub_option_directives(SgeJob(qsub_options=(item,)))
    assert "\n" not in str(info.value)


def test_which_states_are_over(tmp_path):
    backend = SgeBackend(ClusterSettings(out_dir=tmp_path),
                         SgeSettings(("-l h_rt=1:00:00",), (), "smp"))
    assert backend.time_limit() == 3600
    over = ["DONE", "killed", "TIMEOUT", "failed 26: opening input/output file", "Eqw"]
    assert all(backend.is_final(state) for state in over)
    # running, being deleted, restarted, or gone from qstat and not yet in qacct: not over
    assert not any(backend.is_final(state) for state in ("r", "dr", "Rr", "t", ENDING, "qw"))
    assert "qw" in backend.queued_states and "Rq" in backend.queued_states
    assert backend.task_job_id("12", 0) == "12.1" and backend.array_of("12.7") == "12"


@pytest.mark.parametrize("flags, words", [({"sge_mem": "lots"}, "--sge_mem=lots: expected a size"),
                                          ({"sge_queue": "a b"}, "expected one name"),
                                          ({"sge_pe": "s'mp"}, "quotes")])
def test_bad_grid_engine_values_are_one_line(flags, words):
    with pytest.raises(ValueError, match=words) as info:
        sge_directives(SgeJob(**flags))
    assert "\n" not in str(info.value)


def test_the_flags_directives_in_order():
    job = SgeJob(sge_cpus=2, sge_mem="1G", sge_gpus=0, sge_queue="gpu.q", sge_pe="threads",
                 num_hours=0.5, qsub_options=("P=proj",))
    assert sge_directives(job) == ["-pe threads 2", "-l h_vmem=512M", "-l h_rt=0:30:00",
                                   "-q gpu.q", "-P proj"]
