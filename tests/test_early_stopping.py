"""Early stopping through the real CLI: sims report (``hpsearch.report``, or a rewritten
summary with no change to the sim), the driver prunes (ASHA), the run is told to stop
(the stop flag and SIGTERM; SIGKILL after ``--prune_grace`` for a sim that ignores both),
locally, on the real Slurm and on the LSF emulator; a driver killed mid-pruning resumes
without losing or re-deciding a decision.

The curves: ``loss(epoch) = x + 1 / epoch``; the grid walks x = 0.1, 0.9, 0.5 in order with
one run at a time, so with ASHA (rungs at 1, 3, 9 epochs, reduction factor 3) the first run
is the best at every rung and goes to its end, and the next two are the worst at the first
rung (1 epoch) and are pruned there. Each epoch takes 0.3 s, so a pruned run is told to
stop long before it would have ended. (A sim that rewrites its summary is read now and then:
a run first read past the first rung enters it unscored and is pruned at the next one.)

``garbage="inf"`` (or ``"nan"``, ``"text"``) makes the sims write report lines of their own:
the others than the first write lines with text and undeclared keys; the first adds lines of
step 1.5, 2.5, ... and of step inf (nan; none for ``"text"``).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import hpsearch_cmd, hpsearch_env, pid_alive, run_hpsearch, start_hpsearch, wait_for
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)
from test_pbs_emulator import pbs  # noqa: F401  (fixture: PBS emulator, each flavour)

from hpsearch import report
from hpsearch.backends.slurm.backend import SlurmBackend
from hpsearch.engine.journal import replay
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import cluster_settings, resources_of
from hpsearch.runs.curves import read_curve, split_points
from hpsearch.runs.files import write_run_record
from hpsearch.runs.model import Run

SIM = '''
import json, os, signal, sys, time
from hpsearch import report
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
x, epochs, stubborn = float(args["x"]), int(args["epochs"]), args.get("stubborn") == "1"
log = {log!r}
def note(**kw):
    with open(log, "a") as f:
        f.write(json.dumps(dict(x=x, pid=os.getpid(), t=time.time(), **kw)) + "\\n")
if stubborn:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
note(ev="start")
out = args["out_dir"]
os.makedirs(out, exist_ok=True)
def raw(**line):  # a report line written without report(), which would refuse these
    with open(os.path.join(out, "hpsearch_report.jsonl"), "a") as f:
        f.write(json.dumps(line) + "\\n")
for epoch in range(1, epochs + 1):
    time.sleep(0.3)
    loss = x + 1 / epoch
    if args.get("style") == "summary":  # hypnettorch's habit: no hpsearch import needed
        with open(os.path.join(out, "perf.txt"), "w") as f:
            f.write(f"val_loss {{loss}}\\nepoch {{epoch}}\\nfinished 0\\n")
    elif args["garbage"] != "no" and x != 0.1:
        raw(step=epoch, val_loss=loss, epoch="one", junk=7, note="n" * 200_000)
    else:
        report(step=epoch, val_loss=loss)
        if args["garbage"] in ("inf", "nan"):
            for step in (epoch + 0.5, float(args["garbage"])):
                raw(step=step, val_loss=-1.0)
    while epoch == 2 and os.path.exists(log + ".hold"):  # a test holds its runs here
        time.sleep(0.05)
    if not stubborn and (report.should_stop() if args.get("style") != "summary"
                         else os.path.exists(os.path.join(out, "hpsearch_stop"))):
        note(ev="stopped", epoch=epoch)
        sys.exit(0)
with open(os.path.join(out, "perf.txt"), "w") as f:
    f.write(f"val_loss {{loss}}\\nepoch {{epochs}}\\nfinished 1\\n")
note(ev="end")
'''

MODULE = '''
grid = {{"x": [0.1, 0.9, 0.5], "epochs": [{epochs}], "style": [{style!r}],
        "stubborn": [{stubborn}], "garbage": [{garbage!r}]}}
_SCRIPT_NAME = "sim.py"
_SUMMARY_FILENAME = "perf.txt"
_SUMMARY_KEYWORDS = ["val_loss", "epoch", "finished"]
_PERFORMANCE_KEY = "val_loss"
_PERFORMANCE_SORT_ASC = True
_PRUNER = {pruner!r}
_PRUNER_OPTIONS = {{"step": {step!r}, "min_resource": 1, "reduction_factor": 3,
                   "max_resource": 9}}
'''


class Curves:
    def __init__(self, root: Path, epochs: int = 10, style: str = "report",
                 stubborn: int = 0, pruner: str = "asha", garbage: str = "no") -> None:
        self.root = root
        self.epochs = epochs
        self.log = root / "sim_log.jsonl"
        self.out_dir = root / "out"
        proj = root / "proj"
        proj.mkdir(parents=True, exist_ok=True)
        (proj / "sim.py").write_text(SIM.format(log=str(self.log)))
        step = "epoch" if style == "summary" else "step"
        (proj / "hpconf.py").write_text(MODULE.format(epochs=epochs, style=style,
                                                      stubborn=stubborn, step=step,
                                                      pruner=pruner, garbage=garbage))

    def args(self, *extra: str) -> list[str]:
        return ["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={self.out_dir}",
                "--visible_gpus=-1", "--deterministic_search", *extra]

    def events(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(ln) for ln in self.log.read_text().splitlines()]

    def states(self) -> dict[float, object]:
        return {s.config["x"]: s for s in replay(self.out_dir / "journal.jsonl").runs.values()}

    def rows(self) -> dict[str, dict[str, str]]:
        import csv

        with open(self.out_dir / "search_results.csv", newline="") as f:
            return {r["x"]: r for r in csv.DictReader(f, delimiter=";")}


def assert_pruned_at_the_first_rung(c: Curves, rungs: tuple[str, ...] = ("rung 0 (1 steps)",)
                                    ) -> None:
    """The best run finished; the two others were pruned at one of ``rungs`` (the first
    where they had a value)."""
    rows = c.rows()
    assert rows["0.1"]["status"] == "finished", rows
    for x in ("0.9", "0.5"):
        row = rows[x]
        assert row["status"] == "pruned" and row["attempts"] == "1", row
        assert row["failure_reason"].startswith("pruned at step"), row
        assert any(rung in row["failure_reason"] for rung in rungs), row
        assert 1 <= float(row["steps"]) < c.epochs  # stopped early, its last values kept
        assert abs(float(row["val_loss"]) - (float(x) + 1 / float(row["steps"]))) < 1e-9


def test_asha_prunes_local_runs_that_stop_themselves(tmp_path):
    c = Curves(tmp_path)
    rc, _, err = run_hpsearch(c.args(), tmp_path, timeout=120)
    assert rc == 0, err  # a pruned run is not a failure
    assert_pruned_at_the_first_rung(c)
    stopped = {e["x"] for e in c.events() if e["ev"] == "stopped"}
    assert stopped == {0.9, 0.5}  # both read should_stop() and exited cleanly
    for x in (0.9, 0.5):
        run_dir = c.out_dir / "runs" / c.states()[x].run_id
        assert (run_dir / "exit_code").read_text().startswith("0 ")
        assert (run_dir / "out" / "hpsearch_stop").exists()
    rc, out, _ = run_hpsearch(["status", str(c.out_dir)], tmp_path)
    assert "2 pruned" in out and "1 finished" in out, out
    rc, _, err = run_hpsearch(c.args(), tmp_path)  # a pruned run is never retried
    assert rc == 0 and sum(e["ev"] == "start" for e in c.events()) == 3, err


def test_a_sim_that_ignores_the_stop_is_killed_after_the_grace(tmp_path):
    c = Curves(tmp_path, epochs=60, stubborn=1)
    started = time.monotonic()
    rc, _, err = run_hpsearch(c.args("--prune_grace=1"), tmp_path, timeout=120)
    assert rc == 0, err
    rows = c.rows()
    assert [rows[x]["status"] for x in ("0.1", "0.9", "0.5")] == ["finished", "pruned",
                                                                   "pruned"]
    pids = [e["pid"] for e in c.events() if e["ev"] == "start"]
    assert not any(pid_alive(p) for p in pids)
    assert not any(e["ev"] == "stopped" for e in c.events())
    # 60 epochs of 0.3 s would be 18 s a run: the pruned ones ended a grace after the stop
    assert time.monotonic() - started < 18 + 2 * 10


def test_a_sim_that_rewrites_its_summary_is_pruned_with_no_change(tmp_path):
    c = Curves(tmp_path, style="summary")
    rc, _, err = run_hpsearch(c.args(), tmp_path, timeout=120)
    assert rc == 0, err
    # read now and then: a run first read past 1 epoch is scored at 3 epochs only
    assert_pruned_at_the_first_rung(c, ("rung 0 (1 steps)", "rung 1 (3 steps)"))
    for x in (0.9, 0.5):  # the driver kept what it read (about once a second) as the curve
        curve = c.out_dir / "runs" / c.states()[x].run_id / "curve.jsonl"
        points = [json.loads(ln) for ln in curve.read_text().splitlines()]
        assert points and all("val_loss" in p for p in points)
        assert [p["step"] for p in points] == sorted({p["step"] for p in points})


def test_kill_9_after_a_prune_decision_keeps_it_and_stops_the_run(tmp_path, procs):
    c = Curves(tmp_path, epochs=60, stubborn=1)
    journal = c.out_dir / "journal.jsonl"
    driver = start_hpsearch(c.args("--prune_grace=30"), tmp_path)
    procs.append(driver)
    wait_for(lambda: journal.exists() and '"ev":"prune"' in journal.read_text(), timeout=60,
             what="the first prune decision")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    victim = next(e["pid"] for e in c.events() if e["ev"] == "start" and e["x"] == 0.9)
    assert pid_alive(victim)  # it ignores SIGTERM and the grace was 30 s
    rc, _, err = run_hpsearch(c.args("--prune_grace=1"), tmp_path, timeout=120)
    assert rc == 0, err
    assert not pid_alive(victim)
    rows = c.rows()
    assert rows["0.9"]["status"] == "pruned" and rows["0.5"]["status"] == "pruned"
    assert sum(e["ev"] == "start" and e["x"] == 0.9 for e in c.events()) == 1  # not rerun


def test_reports_written_while_no_driver_ran_are_read_on_restart(tmp_path, procs):
    c = Curves(tmp_path, epochs=60, stubborn=1)
    hold = Path(f"{c.log}.hold")  # the runs wait after their second step until it is gone
    hold.write_text("")
    driver = start_hpsearch(c.args("--prune_grace=1"), tmp_path)
    procs.append(driver)
    wait_for(lambda: any(e["ev"] == "start" and e["x"] == 0.9 for e in c.events()),
             timeout=60, what="the second run started")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    report = c.out_dir / "runs" / next(s.run_id for x, s in c.states().items() if x == 0.9) \
        / "out" / "hpsearch_report.jsonl"
    wait_for(lambda: report.exists() and report.read_text().count("\n") >= 2, timeout=30,
             what="the orphaned run to report its first steps")
    restarted = start_hpsearch(c.args("--prune_grace=1"), tmp_path)
    procs.append(restarted)
    journal = c.out_dir / "journal.jsonl"
    try:  # the orphaned runs go on once the restarted driver watches them
        wait_for(lambda: journal.read_text().count('"ev":"start"') >= 2, timeout=60,
                 what="the restarted driver's start")
    finally:
        hold.unlink()
    _, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err
    # which rung prunes it depends on how far the two orphaned runs got before the restart (a
    # run alone at a rung goes on, as ASHA's rule says): any rung, so long as it stopped early
    assert_pruned_at_the_first_rung(c, rungs=tuple(f"rung {k} ({3 ** k} steps)"
                                                   for k in range(4)))


# -- clusters -------------------------------------------------------------------------------
def counting(tmp_path: Path, tools: tuple[str, ...]) -> tuple[dict[str, str], Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, tool
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\nexec {real} "$@"\n')
        (bin_dir / tool).chmod(0o755)
    env = hpsearch_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env, log


@pytest.mark.usefixtures("slurm_cluster")
def test_asha_prunes_slurm_jobs_with_scancel_signal(tmp_path):
    # 40 epochs: a pruned job has 11 s to get its stop through sbatch's and squeue's round
    # trips on a loaded machine (with 10, a CI run once saw one run to its end first)
    c = Curves(tmp_path, epochs=40)
    env, log = counting(tmp_path, ("scancel",))
    done = subprocess.run(hpsearch_cmd(c.args("--run_cluster", "--scheduler=slurm",
                                              "--slurm_gres=", "--slurm_mem=50M",
                                              "--num_jobs=1")),
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert_pruned_at_the_first_rung(c)
    assert {e["x"] for e in c.events() if e["ev"] == "stopped"} == {0.9, 0.5}
    calls = log.read_text().splitlines()
    assert calls and all(call.startswith("scancel --signal=TERM --full ") for call in calls)
    assert len(calls) == 2  # one per poll in which a run was pruned: each alone here


def test_asha_prunes_lsf_jobs_with_bkill_signal(tmp_path, lsf):  # noqa: F811
    c = Curves(tmp_path, epochs=60, stubborn=1)
    rc, _, err = run_hpsearch(c.args("--run_cluster", "--scheduler=lsf", "--num_jobs=1",
                                     "--prune_grace=1"), tmp_path, timeout=180)
    assert rc == 0, err
    rows = c.rows()
    assert [rows[x]["status"] for x in ("0.1", "0.9", "0.5")] == ["finished", "pruned",
                                                                   "pruned"]
    kills = [json.loads(ln.split(" ", 2)[2]) for ln in (lsf / "calls.log").read_text()
             .splitlines() if ln.startswith("bkill ")]
    signals = [k for k in kills if k[:2] == ["-s", "TERM"]]
    assert len(signals) == 2, kills  # the stop, for each pruned run (each alone here)
    assert len(kills) == 4, kills  # and, a grace later, the kill: the sims ignore SIGTERM



def test_asha_prunes_pbs_jobs_with_qsig(tmp_path, pbs):  # noqa: F811
    """Through the PBS emulator (tests/pbs_emulator; PBS is not in Debian), both flavours:
    a pruned run's job gets ``qsig -s TERM``, and ``qdel`` a grace later (its sim ignores
    SIGTERM)."""
    c = Curves(tmp_path, epochs=60, stubborn=1)
    rc, _, err = run_hpsearch(c.args(*pbs.flags, "--num_jobs=1", "--prune_grace=1"), tmp_path,
                              timeout=180)
    assert rc == 0, err
    rows = c.rows()
    assert [rows[x]["status"] for x in ("0.1", "0.9", "0.5")] == ["finished", "pruned",
                                                                   "pruned"]
    signals = [argv for _, _, argv in pbs.calls("qsig")]
    assert len(signals) == 2 and all(argv[:2] == ["-s", "TERM"] for argv in signals), signals
    assert len(pbs.calls("qdel")) == 2  # and, a grace later, the kill

@pytest.mark.usefixtures("slurm_cluster")
def test_stops_of_one_poll_are_one_scancel(tmp_path):
    env, log = counting(tmp_path, ("scancel",))
    os.environ["PATH"], saved = env["PATH"], os.environ["PATH"]
    try:
        options = SearchOptions(out_dir=tmp_path, run_cwd=tmp_path, python="python3",
                                run_cluster=True, scheduler="slurm", slurm_gres="",
                                slurm_mem="50M", num_jobs=8)
        backend = SlurmBackend(*cluster_settings(options))
        key = f"k{secrets.token_hex(4)}"  # random, as the driver's: the cluster may be shared
        runs = []
        for i in range(4):
            run_dir = tmp_path / "runs" / f"s{i}"
            argv = ("python3", "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                    f"signal.SIG_IGN); open({str(run_dir / 'ignoring')!r}, 'w'); "
                    "time.sleep(120)")
            write_run_record(run_dir, {"run_id": f"s{i}"}, argv, tmp_path, {})
            runs.append(Run(f"s{i}", i, {}, argv, tmp_path, run_dir, run_dir / "out",
                            launch=key, resources=resources_of(options)))
        backend.submit(runs, key)
        # stopped only once each sim ignores SIGTERM (started_at comes before that)
        wait_for(lambda: all((r.run_dir / "ignoring").exists() for r in runs), timeout=60)
        backend.stop([r.run_id for r in runs], grace=1.0)
        ended = {}
        deadline = time.monotonic() + 60
        while len(ended) < 4:
            assert time.monotonic() < deadline
            before = backend.calls.stops
            ended.update((e.run_id, e) for e in backend.poll())
            assert backend.calls.stops - before <= 1
            backend.wait(0.5)
        calls = log.read_text().splitlines()
        assert len(calls) == 2, calls  # one SIGTERM for all four, one kill for all four
        assert calls[0].startswith("scancel --signal=TERM --full ") and \
            len(calls[0].split()) == 3 + 4
        # killed: no exit status was recorded and Slurm says CANCELLED, or FAILED when the
        # killed batch shell's status reached it first -- or, where Slurm kills a job's
        # processes one by one (proctrack/linuxproc), the wrapper outlived its sim by a moment
        # and recorded the SIGKILL (137)
        for e in ended.values():
            assert (e.exit_code is None and e.reason in ("CANCELLED", "FAILED")) \
                or e.exit_code == 128 + signal.SIGKILL, e
    finally:
        os.environ["PATH"] = saved


# -- bad reports cost a report, never the search ---------------------------------------------
@pytest.mark.parametrize("step", [math.inf, -math.inf, math.nan, 1.5, "3", True])
def test_report_refuses_a_step_that_is_not_a_finite_whole_number(tmp_path, monkeypatch, step):
    monkeypatch.setenv("HPSEARCH_OUT_DIR", str(tmp_path))
    with pytest.raises(ValueError) as info:
        report(step=step, loss=0.5)
    assert str(info.value) == (f"report(step={step!r}): the step must be a finite whole "
                               "number, such as the epoch (3 or 3.0)")
    assert not (tmp_path / "hpsearch_report.jsonl").exists()  # nothing written
    report(step=3.0, loss=math.nan)  # a whole float is a step; a diverged loss is a value
    report(step=4, loss=0.25)
    lines = (tmp_path / "hpsearch_report.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [3, 4]
    assert lines[0].startswith('{"step": 3, ')  # written as the whole number it is


@pytest.mark.parametrize("pruner, garbage", [("asha", "inf"), ("hyperband", "nan")])
def test_report_lines_with_bad_steps_or_text_cost_those_lines_only(tmp_path, pruner, garbage):
    c = Curves(tmp_path, pruner=pruner, garbage=garbage)
    rc, _, err = run_hpsearch(c.args(), tmp_path, timeout=120)
    assert rc == 0, err
    assert "Traceback" not in err
    best = c.states()[0.1].run_id  # its lines of step 1.5, Infinity (or NaN) are left out
    warnings = [ln for ln in err.splitlines() if f"run {best} #0: a report was left out" in ln]
    assert len(warnings) == 1, err  # once, though every epoch brought more
    assert "(hpsearch_report.jsonl: step " in warnings[0]
    assert " is not a finite whole number); said once a run" in warnings[0]
    assert err.count("a report was left out") == 1  # the others' lines have good steps
    if pruner == "asha":
        assert_pruned_at_the_first_rung(c)
    else:  # three brackets for three runs: each competes alone and goes to its end
        assert {row["status"] for row in c.rows().values()} == {"finished"}
    assert float(c.rows()["0.1"]["val_loss"]) == pytest.approx(0.2)  # not the -1 of the garbage
    rc, _, err = run_hpsearch(c.args(), tmp_path, timeout=120)  # a resume reads them again
    assert rc == 0 and "Traceback" not in err, err
    assert sum(e["ev"] == "start" for e in c.events()) == 3  # nothing ran again


def test_a_curve_on_disk_with_bad_lines_reads_as_its_good_points(tmp_path):
    """What a restart reads (a run left by an older version, or a sim writing its own
    lines): the good points, whatever else the files hold."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "hpsearch_report.jsonl").write_text(
        '{"step": 1, "loss": 0.5, "note": "text", "bad": true}\n{"step": Infinity}\n'
        '{"step": NaN, "loss": 1}\n{"step": 2.5}\n{"step": "3"}\n{"loss": 1}\n[1]\nnot json\n'
        '\n{"step": 4.0, "loss": -Infinity}\n{"step": 5, "lo')  # torn: waits for its end
    (tmp_path / "curve.jsonl").write_text('{"step": 1e999, "loss": 0}\n{"step": 2, "loss": 0.4}\n')
    assert read_curve(tmp_path) == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4},
                                    {"step": 4.0, "loss": -math.inf}]
    points, problem = split_points((tmp_path / "out" / "hpsearch_report.jsonl").read_bytes())
    assert len(points) == 2 and problem == "a line is not JSON"  # one of the problems


def test_report_lines_with_text_or_undeclared_keys_add_no_column(tmp_path):
    c = Curves(tmp_path, garbage="text")  # the pruned runs' last reports make their values
    rc, _, err = run_hpsearch(c.args(), tmp_path, timeout=120)
    assert rc == 0, err
    with open(c.out_dir / "search_results.csv", newline="") as f:
        header = f.readline().rstrip("\n").split(";")
    assert "junk" not in header and "note" not in header, header  # undeclared: no column
    assert_pruned_at_the_first_rung(c)  # (reads the CSV: no field of 200 000 characters)
    assert all(c.rows()[x]["epoch"] == "" for x in ("0.9", "0.5"))  # "one" is no number


FIRST_READ_LATE = '''
import os, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
x, out = float(args["x"]), args["out_dir"]
os.makedirs(out, exist_ok=True)
# the late one rewrites its summary first at epoch 3: whenever the driver reads it, it is
# first seen past the first rung (1 epoch), with a value better than the other's there
for epoch in range(1 if x < 0.5 else 3, 11):
    time.sleep(0.3)
    with open(os.path.join(out, "perf.txt"), "w") as f:
        f.write(f"loss {{x + 1 / epoch ** 2}}\\nepoch {{epoch}}\\nfinished 0\\n")
    if os.path.exists(os.path.join(out, "hpsearch_stop")):
        sys.exit(0)
with open(os.path.join(out, "perf.txt"), "w") as f:
    f.write(f"loss {{x + 0.01}}\\nepoch 10\\nfinished 1\\n")
'''


def test_asha_does_not_score_a_rung_with_a_value_read_after_it(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "sim.py").write_text(FIRST_READ_LATE.format())
    (proj / "hpconf.py").write_text(
        'grid = {"x": [0.9, 0.1]}\n_SCRIPT_NAME = "sim.py"\n_SUMMARY_FILENAME = "perf.txt"\n'
        '_SUMMARY_KEYWORDS = ["loss", "epoch", "finished"]\n_PERFORMANCE_KEY = "loss"\n'
        '_PERFORMANCE_SORT_ASC = True\n_PRUNER = "asha"\n'
        '_PRUNER_OPTIONS = {"step": "epoch", "max_resource": 9}\n')
    out = tmp_path / "out"
    rc, _, err = run_hpsearch(["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={out}",
                               "--visible_gpus=-1", "--deterministic_search"], tmp_path,
                              timeout=120)
    assert rc == 0, err
    states = {s.config["x"]: s for s in replay(out / "journal.jsonl").runs.values()}
    late, best = states[0.9], states[0.1]
    # the late run's 0.9 + 1/9 at epoch 3 is better than the best's 1.1 at epoch 1, but it
    # is no value at epoch 1: the late run enters rung 0 unscored (alone at the others)
    assert late.status == "finished" and late.rungs, late
    assert 0 not in [rung for rung, _ in late.rungs], late.rungs
    assert best.status == "finished", (best.reason, err)  # best at every step: never pruned
