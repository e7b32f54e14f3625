"""What a user meets: a changed search refused, interpreter flags in _SCRIPT_NAME, failures
shown with their stderr, ``hpsearch retry``, counts that tell the truth, small things.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess

import pytest
from conftest import (
    GRID_MODULE,
    hpsearch_cmd,
    hpsearch_env,
    run_hpsearch,
    start_hpsearch,
    wait_for,
    write_search,
)


def module(**kw):
    base = dict(grid={"x": [1, 2]}, conditions=[], keywords=["acc", "loss", "finished"],
                perf_key="acc", ascending=False)
    return GRID_MODULE.format(**{**base, **kw})


@pytest.mark.parametrize("change, words", [
    ('_SCRIPT_NAME = "sim.py"', "script is 'sim.py', not 'other.py'"),
    ('_PERFORMANCE_KEY = \'acc\'', "objective is"),
    ("_SUMMARY_KEYWORDS = ['acc', 'loss', 'finished']", "summary keywords"),
])
def test_resuming_with_a_changed_grid_module_is_refused_unless_forced(tmp_path, change, words):
    s = write_search(tmp_path, {"x": [1, 2]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    before = (s.out_dir / "search_results.csv").read_text()
    text = (s.sim_dir / "hpconf.py").read_text()
    (s.sim_dir / "other.py").write_text((s.sim_dir / "sim.py").read_text())
    replacement = {'_SCRIPT_NAME = "sim.py"': '_SCRIPT_NAME = "other.py"',
                   "_PERFORMANCE_KEY = 'acc'": "_PERFORMANCE_KEY = 'loss'",
                   "_SUMMARY_KEYWORDS = ['acc', 'loss', 'finished']":
                   "_SUMMARY_KEYWORDS = ['acc', 'finished']"}[change]
    assert change in text
    (s.sim_dir / "hpconf.py").write_text(text.replace(change, replacement))
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 2 and words in err and "--force_out_dir" in err, err
    assert len(err.strip().splitlines()) == 1
    assert (s.out_dir / "search_results.csv").read_text() == before
    rc, _, err = run_hpsearch(s.args("--force_out_dir"), tmp_path)
    assert rc == 0, err


def test_another_grid_module_pointed_at_a_finished_search_is_refused(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    (s.sim_dir / "other_conf.py").write_text(module(grid={"y": [5]}))
    rc, _, err = run_hpsearch(s.args() + ["--grid_module=other_conf"], tmp_path)
    assert rc == 2 and "grid module / search file" in err and "new --out_dir" in err, err


def test_script_name_with_interpreter_flags_and_subcommand_words(tmp_path):
    s = write_search(tmp_path, {"x": [1]}, module_text=module(grid={"x": [1]}).replace(
        '_SCRIPT_NAME = "sim.py"', "_SCRIPT_NAME = '-W ignore sim.py soft_block_mlp'"))
    with open(s.sim_dir / "sim.py") as f:
        sim = f.read()
    (s.sim_dir / "sim.py").write_text(sim.replace(
        "args = sys.argv[1:]",
        "import warnings\nassert sys.warnoptions == ['ignore'], sys.warnoptions\n"
        "assert sys.argv[1] == 'soft_block_mlp', sys.argv\nargs = sys.argv[2:]"))
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    (row,) = s.results()
    command = (s.out_dir / "runs" / row["run_id"] / "command.sh").read_text()
    assert " -W ignore sim.py soft_block_mlp --out_dir=" in command


RANDOM_SEARCH = """\
script: sim.py
summary_file: perf.txt
metrics: [acc, loss]
algorithm: random
num_trials: 2
parameters:
  lr: {method: loguniform, low: 1.0e-4, high: 1.0e-1}
  x: [1, 2]
"""


def test_a_changed_search_file_is_refused_naming_what_changed(tmp_path):
    s = write_search(tmp_path, {"x": [1]})
    path = s.sim_dir / "search.yaml"
    path.write_text(RANDOM_SEARCH)
    args = ["--search_file=proj/search.yaml", "--run_cwd=proj", f"--out_dir={s.out_dir}",
            "--visible_gpus=-1"]
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    recorded = (s.out_dir / "search.json").read_text()
    path.write_text(RANDOM_SEARCH.replace("low: 1.0e-4", "low: 1.0e-5")
                    + "  momentum: [0.9, 0.99]\n")
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 2 and err.count("\n") == 1, err
    assert "over other parameters (parameter lr: loguniform(0.0001, 0.1) -> " \
        "loguniform(1e-05, 0.1); added: momentum): pass a new --out_dir, or " \
        "--force_out_dir" in err, err
    assert (s.out_dir / "search.json").read_text() == recorded  # nothing written
    many = "".join(f"  p{i}: [{i}]\n" for i in range(5))
    path.write_text(RANDOM_SEARCH.replace("x: [1, 2]", "x: [1, 3]") + many)
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 2 and "(parameter x: [1, 2] -> [1, 3]; added: p0, p1; and 3 more)" in err, err


STRICT_SIM = """\
import argparse, os
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--out_dir")
args = parser.parse_args()
os.makedirs(args.out_dir, exist_ok=True)
with open(os.path.join(args.out_dir, "perf.txt"), "w") as f:
    f.write(f"acc {args.lr!r}\\nloss 0\\nfinished 1\\n")
"""


def test_a_mistake_in_the_search_file_stops_fast_and_the_hint_fixes_it(tmp_path):
    s = write_search(tmp_path, {"x": [1]})
    (s.sim_dir / "strict.py").write_text(STRICT_SIM)
    path = s.sim_dir / "search.yaml"
    good = RANDOM_SEARCH.replace("sim.py", "strict.py").replace("  x: [1, 2]\n", "")
    path.write_text(good.replace("num_trials: 2", "num_trials: 8").replace("lr:", "lrr:"))
    args = ["--search_file=proj/search.yaml", "--run_cwd=proj", f"--out_dir={s.out_dir}",
            "--visible_gpus=-1"]
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 3 and "unrecognized arguments: --lrr=" in err, err
    assert "after fixing the search file, run the same command with --force_out_dir" in err
    path.write_text(good.replace("num_trials: 2", "num_trials: 8"))  # the user fixes it
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 2 and "(added: lr; removed: lrr)" in err, err
    rc, _, err = run_hpsearch([*args, "--force_out_dir"], tmp_path)
    assert "finished" in {row["status"] for row in s.results()}, err


CRASHING = "import nosuchpackage_for_hpsearch_tests\n"


def test_a_failing_sim_shows_its_stderr_once_stops_early_and_retry_reruns_it(tmp_path):
    s = write_search(tmp_path, {"x": list(range(12))})
    good = (s.sim_dir / "sim.py").read_text()
    (s.sim_dir / "sim.py").write_text(CRASHING + good)
    rc, _, err = run_hpsearch(s.args("--num_jobs=2"), tmp_path)
    assert rc == 3, err  # stopped early: the first 5 failed alike, none finished
    said = "ModuleNotFoundError: No module named 'nosuchpackage_for_hpsearch_tests'"
    assert err.count(f"    | {said}") == 1, err  # the end of its stderr, once
    assert err.count("its stderr: ") == 1 and "/stderr.log" in err
    assert f"the first 5 runs all failed (exit status 1: {said})" in err
    # the script or the grid module: each fix has its way on
    assert "the mistake is likely in the script or the grid module" in err
    assert f"after fixing the script, run them again with: hpsearch retry {s.out_dir}" in err
    assert "after fixing the grid module, run the same command with --force_out_dir (or a " \
        "new --out_dir)" in err
    assert len(list((s.out_dir / "runs").iterdir())) <= 9
    failed = [r for r in s.results() if r["status"] == "failed"]
    # the fifth stops the search; the run beside it (two slots) may have failed on its own
    # in the same moment, and is failed then too
    assert len(failed) in (5, 6)
    (s.sim_dir / "sim.py").write_text(good)  # the user fixes the sim
    rc, out, err = run_hpsearch(["retry", str(s.out_dir)], tmp_path)
    assert rc == 0, err
    assert f"running {len(failed)} failed run(s) again" in err
    rows = s.results()
    assert len(rows) == 12 and {r["status"] for r in rows} == {"finished"}


def test_resume_with_only_failed_runs_left_says_why_nothing_ran(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2], "mode": ["exit"]})
    rc, _, err = run_hpsearch(s.args("--fail_fast=0"), tmp_path)
    assert rc == 1, err
    rc, _, err = run_hpsearch(s.args("--fail_fast=0"), tmp_path)
    assert rc == 1
    assert "2 run(s) failed earlier" in err and f"hpsearch retry {s.out_dir}" in err


def test_counts_with_conditions_best_after_resume_and_ints(tmp_path, procs):
    # x=1 fans out into three configurations: 5 in all, not the grid's 3
    s = write_search(tmp_path, {"x": [1, 2, 3], "sleep": [0.2]},
                     conditions=[({"x": [1]}, {"y": [7, 8, 9]})])
    rc, _, err = run_hpsearch(s.args("--num_searches=2"), tmp_path)
    assert rc == 0, err
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    final = [ln for ln in err.splitlines() if " done " in ln][-1]
    assert "done 5/5" in final and "pending 0" in final
    assert "best acc=3" in final  # the best run finished before this resume counts
    rc, out, err = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert "5 finished" in out and "(of 5)" in out, out
    text = (s.out_dir / "search_results.csv").read_text()
    assert ";1;finished;" in text and ";1.0;finished;" not in text  # finished stays 1


def test_status_of_a_killed_driver_and_status_agrees_with_collect_after_cancel(
        tmp_path, procs):
    s = write_search(tmp_path, {"x": [1, 2, 3], "hold": [True]})
    s.hold.write_text("")
    try:
        driver = start_hpsearch(s.args("--num_jobs=2"), tmp_path)
        procs.append(driver)
        wait_for(lambda: len(s.starts()) == 2, what="two runs started")
        rc, out, _ = run_hpsearch(["status", str(s.out_dir)], tmp_path)
        assert f"driver pid {driver.pid}" in out and "2 running" in out, out
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        rc, out, _ = run_hpsearch(["status", str(s.out_dir)], tmp_path)
        assert "no driver running" in out and "is gone" in out, out
        rc, out, err = run_hpsearch(["cancel", str(s.out_dir)], tmp_path)
        assert rc == 0 and "cancelled 2 run(s)" in out, out + err
        rc, status, _ = run_hpsearch(["status", str(s.out_dir)], tmp_path)
        rc, collected, _ = run_hpsearch(["collect", str(s.out_dir)], tmp_path)
        assert "2 cancelled" in status and "2 cancelled" in collected, (status, collected)
        assert "0 running" in status
    finally:
        s.hold.unlink()
    rc, _, err = run_hpsearch(s.args("--num_jobs=2"), tmp_path)  # cancelled runs run again
    assert rc == 0, err
    assert {r["status"] for r in s.results()} == {"finished"}


def test_dry_run_of_a_finished_search_prints_nothing_to_run(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2, 3]})
    rc, out, err = run_hpsearch(s.args("--dry_run"), tmp_path)
    assert len(out.splitlines()) == 3
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    rc, out, err = run_hpsearch(s.args("--dry_run"), tmp_path)
    assert rc == 0 and out == "", out


def test_status_shows_values_as_the_csv_does_and_eval_handle_is_named(tmp_path):
    text = module(grid={"act": ['"relu"'], "x": [1]}).replace(
        "_PERFORMANCE_EVAL_HANDLE = None", "_PERFORMANCE_EVAL_HANDLE = lambda *a: True")
    s = write_search(tmp_path, {}, module_text=text)
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    assert "_PERFORMANCE_EVAL_HANDLE is accepted but not used" in err
    rc, out, _ = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert "act=relu" in out and '"relu"' not in out, out


def test_final_status_line_once_on_a_terminal(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2]})
    main, child = pty.openpty()
    proc = subprocess.Popen(hpsearch_cmd(s.args()), cwd=tmp_path, env=hpsearch_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=child)
    os.close(child)
    data = b""
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    assert proc.wait(timeout=30) == 0
    text = data.decode()
    finals = [part for part in text.split("\r\x1b[2K") if "done 2/2" in part]
    assert finals and finals[-1].endswith("\n") or "\n" in finals[-1], text
    tail = text.split("done 2/2")[-1]
    assert "hpsearch: results:" in tail and "\x1b" not in tail  # nothing redrawn after


def test_command_sh_and_run_json_record_the_run(tmp_path):
    s = write_search(tmp_path, {"x": [1]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    (row,) = s.results()
    run_dir = s.out_dir / "runs" / row["run_id"]
    command = (run_dir / "command.sh").read_text()
    assert "export HPSEARCH_RUN_ID=" in command and "export HPSEARCH_ATTEMPT=1" in command
    record = json.loads((run_dir / "run.json").read_text())
    assert record["trial"] == 0 and record["config"] == {"x": 1} and record["attempt"] == 1
