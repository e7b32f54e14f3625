"""Summary parsing and the one verdict; journal replay with a torn tail and garbage, and
compaction."""

from __future__ import annotations

import json
import math

import pytest

from hpsearch.engine.journal import Journal, RunState, compact, replay, state_event
from hpsearch.engine.results import row_of
from hpsearch.runs.files import stderr_reason
from hpsearch.runs.summary import SummaryFormat, failure_groups, failure_kind, parse_summary_text
from hpsearch.runs.summary import judge as summary_judge

KEYS = ["acc", "loss", "finished"]


def test_parse_numbers():
    text = ("acc -1.5e-3\nloss 2E+2\nfinished 1\nother 7\nacc 99\n")
    assert parse_summary_text(text, KEYS) == {"acc": -0.0015, "loss": 200.0, "finished": 1}


def test_parse_nan_inf_and_lists():
    got = parse_summary_text("acc nan\nloss -inf\nfinished 1\nper_task [0.5, -1e-3]\n",
                             KEYS + ["per_task"])
    assert math.isnan(got["acc"]) and got["loss"] == -math.inf
    assert got["per_task"] == "0.5,-1e-3"


def judge(tmp_path, text, exit_code=0, parser=None, reason=None):
    if text is not None:
        (tmp_path / "perf.txt").write_text(text)
    fmt = SummaryFormat("perf.txt", KEYS, ["acc"], parser)
    return summary_judge(tmp_path, tmp_path, fmt, exit_code, reason, 3)


def test_verdicts(tmp_path):
    ok = judge(tmp_path, "acc 0.5\nloss 1\nfinished 1\n")
    assert ok.status == "finished" and ok.reason is None and ok.metrics["acc"] == 0.5
    assert "missing" in judge(tmp_path / "nope", None).reason
    assert "finished 0" in judge(tmp_path, "acc 0.5\nloss 1\nfinished 0\n").reason
    assert "finished" in judge(tmp_path, "acc 0.5\nloss 1\n").reason
    assert "loss" in judge(tmp_path, "acc 0.5\nfinished 1\n").reason
    assert judge(tmp_path, "acc 0.").status == "failed"  # truncated mid-write
    assert "exit status 3" in judge(tmp_path, "acc 0.5\nloss 1\nfinished 1\n", 3).reason


def test_verdict_keeps_the_scheduler_reason_and_oom(tmp_path):
    unfinished = "acc 0.5\nloss 1\nfinished 0\n"
    assert judge(tmp_path, unfinished, None, reason="TIMEOUT").reason == "TIMEOUT"
    assert judge(tmp_path, unfinished, 143, reason="TIMEOUT").reason == \
        "TIMEOUT (exit status 143 (SIGTERM))"
    (tmp_path / "stderr.log").write_text("RuntimeError: CUDA out of memory. Tried to ...\n")
    assert judge(tmp_path, "acc 0.5\nloss 1\nfinished 1\n", 1).reason == \
        "oom (exit status 1: RuntimeError: CUDA out of memory. Tried to ...)"


@pytest.mark.parametrize("exit_code, reason", [
    (None, "TIMEOUT"), (143, "TIMEOUT"), (None, "driver interrupted"), (143, None),
    (139, None), (None, None), (0, "CANCELLED")])
def test_a_run_stopped_after_its_summary_said_finished_is_finished(tmp_path, exit_code,
                                                                   reason):
    verdict = judge(tmp_path, "acc 0.5\nloss 1\nfinished 1\n", exit_code, reason=reason)
    assert verdict.status == "finished" and verdict.reason is None, verdict
    assert verdict.stopped and verdict.stopped.startswith(reason or "e"), verdict  # exit, ended
    assert judge(tmp_path, "acc 0.5\nloss 1\nfinished 0\n", exit_code, reason=reason
                 ).status == "failed"
    assert judge(tmp_path, "acc 0.5\nloss 1\nfinished 1\n", 1).status == "failed"  # its word


def test_integers_stay_integers_and_unicode_minus_is_a_minus():
    got = parse_summary_text("acc \u22121.5\nloss 2\nfinished 1\n", KEYS)
    assert got == {"acc": -1.5, "loss": 2, "finished": 1}
    assert type(got["finished"]) is int and type(got["acc"]) is float


def test_custom_parser_hypnettorch_shape(tmp_path):
    seen = []

    def parser(out_dir, run_index):
        seen.append((out_dir, run_index))
        return {"acc": [0.75], "loss": ["-2e-3"], "finished": [1]}

    verdict = judge(tmp_path, None, parser=parser)
    assert verdict.reason is None
    assert verdict.metrics == {"acc": 0.75, "loss": -0.002, "finished": 1}
    assert seen == [(str(tmp_path), 3)]

    def broken(out_dir, run_index):
        raise RuntimeError("boom")

    assert "boom" in judge(tmp_path, None, parser=broken).reason


def two_runs(path):
    journal = Journal(path)
    for trial, run in enumerate(("r1", "r2")):
        journal.append("trial", trial=trial, run=run, config={"a": trial})
    journal.append("launch", key="k1", runs=[["r1", 1], ["r2", 1]])
    journal.append("submit", key="k1", jobs={"r1": "j1", "r2": "j2"})
    journal.append("end", run="r1", status="finished", attempt=1, exit=0, reason=None,
                   metrics={"acc": 0.5}, wall=1.0, extra={})
    journal.close()


def test_journal_replay_ignores_and_cuts_torn_tail(tmp_path):
    path = tmp_path / "journal.jsonl"
    two_runs(path)
    with open(path, "ab") as f:
        f.write(b'{"ev": "end", "run": "r2", "status": "fin')  # kill -9 mid-write
    history = replay(path)
    states = history.runs
    assert states["r1"].status == "finished" and states["r1"].metrics == {"acc": 0.5}
    assert states["r2"].status == "running" and states["r2"].job_id == "j2"
    assert history.warnings == []  # a torn last line is no news

    journal = Journal(path)  # the next driver
    journal.append("end", run="r2", status="failed", attempt=1, exit=1,
                   reason="exit status 1", metrics={}, wall=None, extra={})
    journal.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(ln)["ev"] for ln in lines[:-1]] == [
        "trial", "trial", "launch", "submit", "end", "end"]
    assert replay(path).runs["r2"].status == "failed"


@pytest.mark.parametrize("garbage", [b"not json at all", b"42", b"null", b"[1, 2]",
                                     b'{"ev": "end", "run": "r2"}', b'{"ev": "nosuch"}',
                                     b'{"ev": "end", "run": "r2", "status": "weird"}'])
def test_garbage_in_the_middle_is_reported_with_its_line_number(tmp_path, garbage):
    path = tmp_path / "journal.jsonl"
    two_runs(path)
    lines = path.read_bytes().split(b"\n")
    lines.insert(3, garbage)
    path.write_bytes(b"\n".join(lines))
    history = replay(path)
    assert len(history.warnings) == 1 and "line 4" in history.warnings[0], history.warnings
    assert history.runs["r1"].status == "finished"  # the lines around it still count
    assert history.runs["r2"].status == "running"




def test_a_compacted_journal_replays_to_the_same_runs(tmp_path):
    """Every event kind a driver writes, then compaction (one ``run`` event per run, as at
    the end of a search): replay gives the same runs, field by field, NaN included."""
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append("start", host="h", pid=1, backend="local")
    for trial, run in enumerate(("done", "retried", "pruned", "cancelled", "withdrawn")):
        journal.append("trial", trial=trial, run=run, config={"a": trial, "b": [1, "x"]},
                       args=[f"--a={trial}"], internal={"lr": 0.1 * trial})
    journal.append("launch", key="k1", runs=[["done", 1], ["retried", 1], ["pruned", 1],
                                              ["cancelled", 1]])
    journal.append("submit", key="k1", jobs={"done": "h:1", "retried": "h:2", "pruned": "h:3",
                                             "cancelled": "h:4"})
    journal.append("end", run="done", status="finished", attempt=1, exit=0, reason=None,
                   metrics={"loss": float("nan"), "acc": 0.5, "finished": 1}, wall=1.5,
                   extra={"gpu": 1})
    journal.append("end", run="retried", status="failed", attempt=1, exit=3,
                   reason="exit status 3", metrics={}, wall=0.2, extra={})
    journal.append("rung", run="pruned", rung=0, value=0.9)
    journal.append("prune", run="pruned", step=1, reason="pruned at step 1")
    journal.append("end", run="pruned", status="pruned", attempt=1, exit=0,
                   reason="pruned at step 1", metrics={"loss": 0.9}, wall=0.4,
                   extra={"steps": 1})
    journal.append("cancel", runs=["cancelled"], reason="cancelled by hpsearch cancel")
    journal.append("rerun", runs=["retried"])
    journal.append("launch", key="k2", runs=[["retried", 2]])
    journal.append("submit", key="k2", jobs={"retried": "h:5"})
    journal.append("end", run="retried", status="finished", attempt=2, exit=0, reason=None,
                   metrics={"loss": 0.1}, wall=0.3, extra={}, job="h:5")
    journal.append("withdraw", runs=["withdrawn"])
    journal.append("stop", reason="done")
    journal.close()
    before = replay(path)
    assert set(before.runs) == {"done", "retried", "pruned", "cancelled"}
    assert before.runs["retried"].budget_start == 1 and before.runs["pruned"].rungs
    compact(path, before)
    after = replay(path)
    assert after.warnings == [] and after.run_events == len(after.runs) == 4
    assert [json.dumps(state_event(s)) for s in after.runs.values()] == \
        [json.dumps(state_event(s)) for s in before.runs.values()]
    assert [e["ev"] for e in after.starts] == ["start"]


def test_failure_kind_puts_aside_the_numbers_the_command_said():
    assert failure_kind("exit status 1: ValueError: lr 0.003 < 1e-2") == \
        "exit status 1: ValueError: lr # < #"
    assert failure_kind("exit status 1: bad x 2") == failure_kind("exit status 1: bad x 3")
    assert failure_kind("exit status 1: bad") != failure_kind("exit status 2: bad")
    assert failure_kind("timeout after 60s") == "timeout after 60s"


def test_only_keywords_become_metrics_and_a_huge_text_fails_the_run(tmp_path):
    def parser(out_dir, run_index):
        return {"acc": [0.75], "loss": [1], "finished": [1], "note": ["text"], "junk": [7]}

    assert judge(tmp_path, None, parser=parser).metrics == {"acc": 0.75, "loss": 1,
                                                            "finished": 1}
    huge = "[" + ", ".join(["0.5"] * 5000) + "]"  # 5000 numbers: 19 999 characters of text
    verdict = judge(tmp_path, f"acc 0.5\nloss {huge}\nfinished 1\n")
    assert verdict.status == "failed" and "loss" not in verdict.metrics
    assert verdict.reason == "summary value of loss is 19999 characters long (at most 10000)"
    assert judge(tmp_path, f"acc 0.5\nloss {huge[:2000]}]\nfinished 1\n").status == "finished"


def test_a_huge_text_an_older_journal_holds_never_reaches_the_table(tmp_path):
    state = RunState("r1", 0, {"a": 1}, status="finished",
                     metrics={"acc": 0.5, "loss": "0.5," * 50_000, "per_task": "0.1,0.2"})
    row = row_of(state, tmp_path)
    assert row["acc"] == 0.5 and row["per_task"] == "0.1,0.2" and "loss" not in row


TRACEBACK = """Traceback (most recent call last):
  File "/sims/train.py", line 12, in <module>
    main()
  File "/sims/train.py", line 9, in main
    raise ValueError(f"lr must be positive, got {lr}")
ValueError: lr must be positive, got -0.5
"""
CUDA_ERROR = """Traceback (most recent call last):
  File "/sims/train.py", line 4, in <module>
    x = torch.zeros(1 << 40, device="cuda")
RuntimeError: CUDA error: out of memory
CUDA kernel errors might be asynchronously reported at some other API call, so the \
stacktrace below might be incorrect.
For debugging consider passing CUDA_LAUNCH_BLOCKING=1
Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.
"""


@pytest.mark.parametrize("stderr, said", [
    (TRACEBACK, "ValueError: lr must be positive, got -0.5"),
    ("loading data\n" + TRACEBACK + "wandb: Waiting for W&B process to finish...\n",
     "ValueError: lr must be positive, got -0.5"),
    ("epoch 1\n/run.sh: line 3:  4242 Killed                  python train.py\n",
     "/run.sh: line 3: 4242 Killed python train.py"),
    ("epoch 1\nKilled\n", "Killed"),
    (CUDA_ERROR, "RuntimeError: CUDA error: out of memory"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n",
     "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("[rank0]: KeyError: 'lr'\n[rank0]:[W1123 NCCL] process group destroyed\n",
     "[rank0]: KeyError: 'lr'"),
    ("error: the data folder /data is empty\n", "error: the data folder /data is empty"),
    ("\x1b[31mAssertionError: bad\x1b[0m \x07\tend\n", "AssertionError: bad \\x07 end"),
    ("Traceback (most recent call last):\n  File \"x.py\", line 1\n", None),
    ("", None),
])
def test_the_line_of_stderr_that_says_why_a_run_failed(stderr, said):
    assert stderr_reason(stderr.encode()) == said


def test_a_failed_script_s_reason_is_what_its_stderr_said(tmp_path):
    """A script's failure is ``exit status 1: ValueError: ...``, not ``exit status 1``; a
    ``reason`` file the command left wins; CUDA out of memory is still ``oom (...)``; a
    reason is one line of at most 300 characters with no raw control character."""
    summary = "acc 0.5\nloss 1\nfinished 0\n"
    (tmp_path / "stderr.log").write_text("x" * 70_000 + "\n" + TRACEBACK)
    assert judge(tmp_path, summary, 1).reason == \
        "exit status 1: ValueError: lr must be positive, got -0.5"
    (tmp_path / "stderr.log").write_text("epoch 3\nKilled\n")
    assert judge(tmp_path, summary, 137).reason == "exit status 137 (SIGKILL): Killed"
    (tmp_path / "stderr.log").write_text(CUDA_ERROR)
    assert judge(tmp_path, summary, 1).reason == \
        "oom (exit status 1: RuntimeError: CUDA error: out of memory)"
    (tmp_path / "stderr.log").write_text("\x1b]0;title\x07ValueError: " + "v" * 1000 + "\n")
    reason = judge(tmp_path, summary, 1).reason
    assert reason.startswith("exit status 1: ValueError: vvv") and "\x1b" not in reason
    assert len(reason) <= len("exit status 1: ") + 300
    (tmp_path / "reason").write_text("ZeroDivisionError: division by zero\n")
    assert judge(tmp_path, summary, 1).reason == \
        "exit status 1: ZeroDivisionError: division by zero"
    assert judge(tmp_path, summary, None, reason="TIMEOUT").reason == "TIMEOUT"


def test_failure_groups_count_runs_failing_alike():
    reasons = ["exit status 1: ValueError: lr -0.5 < 0", "exit status 137 (SIGKILL): Killed",
               "exit status 1: ValueError: lr -0.1 < 0", "exit status 1: ValueError: lr -2 < 0",
               "exit status 1: FileNotFoundError: /o/runs/3f2a9c0d1b7e/data.npy",
               "exit status 1: FileNotFoundError: /o/runs/0c6a51f3ffeb/data.npy"]
    assert failure_groups(reasons) == [
        ("exit status 1: ValueError: lr # < #", 3),
        ("exit status 1: FileNotFoundError: /o/runs/#/data.npy", 2),
        ("exit status 137 (SIGKILL): Killed", 1)]
    assert failure_groups(["exit status 2: x", "exit status 2: x"]) == [("exit status 2: x", 2)]
