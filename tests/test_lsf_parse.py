"""The LSF parsers on the texts LSF prints (quoted in tests/lsf_emulator/README.md)."""

from pathlib import Path

import pytest

from hpsearch.backends.lsf.parse import (
    BJOBS_FORMAT,
    BjobsRow,
    bsub_retryable,
    classify_exit,
    parse_bjobs,
    parse_bsub_job_id,
    parse_max_job_array_size,
    scheduler_errors,
)

DATA = Path(__file__).parent / "data" / "lsf"


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_bsub_job_id_from_documented_answers():
    assert parse_bsub_job_id(text("bsub_default_queue.txt")) == "1131"
    assert parse_bsub_job_id(text("bsub_default_queue_2.txt")) == "1815"
    assert parse_bsub_job_id("esub: note\nJob <42> is submitted to queue <short>.\n") == "42"


def test_bsub_refusal_raises():
    with pytest.raises(ValueError, match="no job id"):
        parse_bsub_job_id("Job array index too large. Job not submitted.\n")


def test_bjobs_rows_keys_and_dashes():
    rows = parse_bjobs(text("bjobs_o_emulator.txt"))
    assert rows["1001[1]"] == BjobsRow("DONE", None, None)
    assert rows["1001[3]"] == BjobsRow("EXIT", 3, None)
    assert rows["1001[4]"] == BjobsRow("EXIT", 140, "TERM_RUNLIMIT")
    assert rows["1002"] == BjobsRow("EXIT", 143, "TERM_OWNER")
    assert rows["1003[5]"].stat == "PEND" and rows["1003[6]"].stat == "RUN"
    assert len(rows) == 7


def test_bjobs_blank_separated_reason_with_spaces():
    rows = parse_bjobs("77 2 EXIT 130 job killed by owner\n", delimiter=None)
    assert rows == {"77[2]": BjobsRow("EXIT", 130, "job killed by owner")}


def test_bjobs_messages_are_not_rows():
    assert parse_bjobs(text("bjobs_not_found.txt") + text("bjobs_no_unfinished.txt")) == {}


def test_bjobs_format_asks_for_the_parsed_columns():
    assert BJOBS_FORMAT == "jobid jobindex stat exit_code exit_reason delimiter='|'"


def test_max_job_array_size():
    assert parse_max_job_array_size(text("bparams_max_array_line.txt")) == 1000
    assert parse_max_job_array_size(text("bparams_a_emulator.txt")) == 1000
    assert parse_max_job_array_size("    MAX_JOB_ARRAY_SIZE = 5\n") == 5
    # the documented lsb.params installed at setup sets no MAX_JOB_ARRAY_SIZE: LSF's default
    assert parse_max_job_array_size(text("lsb_params_install.txt")) == 1000


@pytest.mark.parametrize(("row", "reason"), [
    (BjobsRow("DONE", None, None), None),
    (BjobsRow("RUN", None, None), None),
    (BjobsRow("EXIT", 140, "TERM_RUNLIMIT"), "TERM_RUNLIMIT"),
    (BjobsRow("EXIT", 130, "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"),
     "TERM_MEMLIMIT"),
    (BjobsRow("EXIT", 143, "TERM_OWNER"), "killed"),
    (BjobsRow("EXIT", 137, "TERM_FORCE_ADMIN"), "killed"),
    (BjobsRow("EXIT", None, "TERM_CWD_NOTEXIST"), "TERM_CWD_NOTEXIST"),
    (BjobsRow("EXIT", 3, None), "exit status 3"),
    (BjobsRow("EXIT", None, None), "exit status unknown"),
])
def test_classify_exit(row, reason):
    assert classify_exit(row) == reason


def test_scheduler_errors_skip_unknown_and_finished_jobs():
    benign = (text("bjobs_not_found.txt") + text("bjobs_no_unfinished.txt")
              + "Job <1234[3]>: No matching job found\nJob <1234>: Job has already finished\n")
    assert scheduler_errors(benign) == []
    assert scheduler_errors(benign + "LSF is down; Please wait...\n") == [
        "LSF is down; Please wait..."]


def test_bsub_retryable_only_for_a_busy_cluster():
    assert bsub_retryable("Pending job threshold reached. Retrying in 60 seconds...\n")
    assert bsub_retryable("batch system daemon not responding ... still trying\n")
    assert not bsub_retryable("Job array index too large. Job not submitted.\n")
    assert not bsub_retryable("-Z: illegal option. Job not submitted.\n")
