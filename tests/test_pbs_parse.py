"""hpsearch.backends.pbs.parse on the texts its docstrings show: OpenPBS's ``qstat -f -F
json`` layout (``Jobs``, ``job_state``, ``array_indices_remaining``, ``Exit_status``,
``resources_used``), Torque's ``qstat -f`` text, qsub's answers and PBS's error lines, as the
OpenPBS and Torque documentation show them (PBS itself is not installed here)."""

from __future__ import annotations

import textwrap

import pytest

from hpsearch.backends.pbs import parse as pp

OPENPBS_JSON = textwrap.dedent("""\
    {
        "timestamp":1700000000,
        "pbs_version":"23.06.06",
        "pbs_server":"pbs01",
        "Jobs":{
            "1234[].pbs01":{
                "Job_Name":"hps-out-k1",
                "job_state":"B",
                "array":"True",
                "array_indices_submitted":"1-3",
                "array_indices_remaining":"3"
            },
            "1234[1].pbs01":{
                "job_state":"X",
                "Exit_status":0,
                "resources_used":{"ncpus":4, "walltime":"00:30:00"},
                "Resource_List":{"ngpus":2, "walltime":"01:00:00"}
            },
            "1234[2].pbs01":{
                "job_state":"X",
                "Exit_status":271,
                "resources_used":{"ncpus":1, "walltime":"01:00:04"},
                "Resource_List":{"ngpus":1, "walltime":"01:00:00"}
            },
            "1234[3].pbs01":{"job_state":"Q"}
        }
    }
    """)

TORQUE_TEXT = textwrap.dedent("""\
    Job Id: 1234[1].torque01
        Job_Name = hps-out-k1-1
        job_state = C
        exit_status = 3
        resources_used.walltime = 00:00:05
        Resource_List.nodes = 1:ppn=2:gpus=1
        Resource_List.walltime = 01:00:00
        Variable_List = PBS_O_HOME=/home/me,PBS_O_WORKDIR=/home/me/work,
    \tPBS_O_QUEUE=batch

    Job Id: 1234[2].torque01
        Job_Name = hps-out-k1-2
        job_state = R
    """)


def test_openpbs_json_jobs_flattened_and_named():
    records = pp.parse_qstat_json(OPENPBS_JSON)
    assert sorted(records) == ["1234[1]", "1234[2]", "1234[3]", "1234[]"]
    assert records["1234[]"]["array_indices_remaining"] == "3"
    assert records["1234[1]"]["resources_used.walltime"] == "00:30:00"
    assert {k: pp.job_state(r) for k, r in records.items()} == {
        "1234[]": "B", "1234[1]": "F", "1234[2]": "walltime exceeded", "1234[3]": "Q"}
    assert pp.usage(records["1234[1]"]) == {"gpu_hours": 1.0, "cpu_hours": 2.0}
    assert pp.usage(records["1234[3]"]) is None
    assert pp.usage({"resources_used.walltime": "00:00:00"}) is None
    assert pp.parse_qstat_json('{"timestamp":1,"pbs_version":"23.06.06"}') == {}
    with pytest.raises(ValueError):
        pp.parse_qstat_json("qstat: garbage")


def test_torque_text_blocks_with_wrapped_values():
    records = pp.parse_attribute_blocks(TORQUE_TEXT)
    assert sorted(records) == ["1234[1]", "1234[2]"]
    assert records["1234[1]"]["Variable_List"].endswith(",PBS_O_QUEUE=batch")
    assert pp.job_state(records["1234[1]"]) == "exit status 3"
    assert pp.usage(records["1234[1]"]) == {"gpu_hours": round(5 / 3600, 6),
                                           "cpu_hours": round(10 / 3600, 6)}
    assert pp.array_state(records, "1234[]") == "R"  # Torque may list the subjobs only
    assert pp.array_state({"1234[1]": records["1234[1]"]}, "1234[]") == pp.FINISHED
    assert pp.array_state(records, "99[]") is None and pp.array_state(records, "1") is None


@pytest.mark.parametrize("record, state", [
    ({"job_state": "F", "Exit_status": "265"}, "killed"),  # 256 + SIGKILL: qdel
    ({"job_state": "X", "Exit_status": "-1"}, "exit status -1"),  # PBS could not run it
    ({"job_state": "X"}, "exit status unknown"),
    ({"job_state": "C", "exit_status": "0", "resources_used.walltime": "01:00:00",
      "Resource_List.walltime": "01:00:00"}, "F"),  # exit 0 at the limit is a success
    ({"job_state": "H"}, "H")])
def test_job_states(record, state):
    assert pp.job_state(record) == state
    assert pp.is_over(state) == (record["job_state"] in ("F", "X", "C"))


def test_qsub_answers_ids_and_errors():
    assert pp.parse_qsub_job_id("1234[].pbs01\n") == "1234[].pbs01"
    assert pp.parse_qsub_job_id("site banner\n1235.pbs01.example.org\n") == \
        "1235.pbs01.example.org"
    with pytest.raises(ValueError):
        pp.parse_qsub_job_id("qsub: Unknown resource Resource_List.frobs\n")
    assert pp.short_id("1234[7].pbs01.example") == "1234[7]" and pp.short_id("77") == "77"
    benign = ("qstat: Unknown Job Id 1234[].pbs01\nqdel: Job has finished 1235.pbs01\n"
              "qstat: 1236.pbs01 Job has finished, use -x or -H to obtain historical job "
              "information\nqsig: Request invalid for state of job 1237[2].pbs01\n")
    assert pp.scheduler_errors(benign) == []
    assert pp.scheduler_errors("qstat: cannot connect to server pbs01 (errno=111)\n")
    assert pp.qsub_retryable("qsub: Maximum number of jobs already in queue\n")
    assert not pp.qsub_retryable("qsub: illegal -J value\n")


def test_server_limits_and_durations():
    text = "Server: pbs01\n    server_state = Active\n    max_array_size = 500\n\n"
    assert pp.max_array_size(pp.parse_attribute_blocks(text, "Server")) == 500
    assert pp.max_array_size(pp.parse_server_json(
        '{"Server":{"pbs01":{"max_array_size":20}}}')) == 20
    assert pp.max_array_size({}) == pp.DEFAULT_MAX_ARRAY_SIZE
    assert [pp.seconds(t) for t in ("12:00:00", "05:30", "90", "1:xx")] == [
        43200, 330, 90, None]
