"""``hpsearch report`` without a browser: a running search, a dead driver's, a hypnettorch
directory, the terminal table, and one-line errors. The page's data is read back from the
written file (the JSON the page draws from)."""

from __future__ import annotations

import csv
import json
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import synthetic
from conftest import REPO, run_hpsearch, start_hpsearch, wait_for, write_search
from test_core_collect import HYPNETTORCH_MODULE

DATA = re.compile(r'<script type="application/json" id="hpsearch-data">(.*?)</script>', re.S)
#: sims/curves' random search with ASHA (rungs at 1, 3, 9, 27 epochs): of its 30 runs most
#: are pruned, a few finish
ASHA_SEARCH = ["--search_file=sims/curves/search.yaml", "--run_cwd=sims/curves",
               "--visible_gpus=-1", "--num_jobs=2"]
#: importance.MIN_RUNS: fewer finished runs, and importance reads the values at a step
MIN_RUNS = 11
BASIS = re.compile(r"the values at step (\d+) \((\d+) runs reached it; (\d+) finished\)")


def results(out_dir: Path) -> list[dict[str, str]]:
    with open(out_dir / "search_results.csv", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def asha_search(out_dir: Path) -> list[dict[str, str]]:
    """Run :data:`ASHA_SEARCH` into ``out_dir``; its results, most runs pruned and fewer than
    :data:`MIN_RUNS` finished."""
    rc, _, err = run_hpsearch([*ASHA_SEARCH, f"--out_dir={out_dir}"], REPO, timeout=300)
    assert rc == 0, err
    rows = results(out_dir)
    statuses = Counter(r["status"] for r in rows)
    assert statuses["finished"] + statuses["pruned"] == len(rows) == 30, statuses
    assert statuses["pruned"] >= 15 and 1 <= statuses["finished"] < MIN_RUNS, statuses
    return rows


@pytest.fixture(scope="module")
def asha(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    out = tmp_path_factory.mktemp("asha") / "curves"
    return out, asha_search(out)


def report_data(page: Path) -> dict[str, Any]:
    """The page's data; the page loads no script, style or image from elsewhere."""
    html = page.read_text()
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", markup)
    assert html.count("<script") == 3 and "<script src" not in html
    return json.loads(DATA.search(html).group(1))


def test_report_of_running_then_dead_driver(tmp_path, procs):
    s = write_search(tmp_path, {"x": [1, 2, 3, 4], "hold": [1]})
    s.hold.write_text("")
    driver = start_hpsearch(s.args("--num_jobs=2"), tmp_path)
    procs.append(driver)
    runs = s.out_dir / "runs"
    wait_for(lambda: runs.is_dir() and sum((d / "started_at").exists()
                                           for d in runs.iterdir()) == 2, what="2 running")
    rc, out, err = run_hpsearch(["report", str(s.out_dir), "-o", str(tmp_path / "live.html")],
                                tmp_path)
    assert rc == 0, err
    assert "report of 4 runs" in out or "report of 2 runs" in out
    data = report_data(tmp_path / "live.html")
    assert data["runs"]["status"].count("running") == 2
    assert len(data["bars"]["run"]) == 2 and data["scored"] == []
    rc, out, _ = run_hpsearch(["report", "--terminal", str(s.out_dir)], tmp_path)
    assert rc == 0 and "no finished run yet" in out and "2 running" in " ".join(out.split())

    driver.send_signal(signal.SIGKILL)  # the driver dies; its runs go on and end
    driver.wait()
    s.hold.unlink()
    wait_for(lambda: sum((d / "exit_code").exists() for d in runs.iterdir()) == 2,
             what="the orphaned runs to end")
    rc, _, err = run_hpsearch(["report", str(s.out_dir)], tmp_path)
    assert rc == 0, err
    data = report_data(s.out_dir / "report.html")
    finished = [i for i, st in enumerate(data["runs"]["status"]) if st == "finished"]
    assert len(finished) == 2 and data["scored"] == finished  # judged from the run dirs
    assert all(data["runs"]["m"]["acc"][i] in (1, 2, 3, 4) for i in finished)


def test_report_of_hypnettorch_directory(tmp_path):
    search = tmp_path / "search_2024-01-01_12-00-00"
    search.mkdir()
    (search / "hpsearch_config_mine.py").write_text(HYPNETTORCH_MODULE)
    for i, (lr, acc, finished) in enumerate([("0.001", "0.91", "1"), ("0.01", "0.95", "1"),
                                             ("0.1", "0.5", "0")]):
        sim = search / f"sim_2024-01-01_12-00-0{i}_{i}"
        sim.mkdir()
        (sim / "hpsearch_command.sh").write_text(
            f"#!/bin/sh\npython3 train.py --out_dir={sim} --lr={lr} --use_bn\n")
        (sim / "performance_overview.txt").write_text(f"acc_test {acc}\nfinished {finished}\n")
    rc, out, err = run_hpsearch(["report", str(search)], tmp_path)
    assert rc == 0, err
    data = report_data(search / "report.html")
    assert sorted(data["runs"]["status"]) == ["failed", "finished", "finished"]
    assert [p["name"] for p in data["params"]] == ["lr"]
    html = (search / "report.html").read_text()
    assert "--lr=0.01 --use_bn" in html  # the best run's own command
    assert not (search / "search_results.csv").exists()  # report writes nothing else


def test_terminal_table_fits_100_columns(tmp_path):
    long = {f"a_rather_long_parameter_name_{k}": [0.000123456 * (k + 1), 12345.678] for k in
            range(5)}
    s = write_search(tmp_path, {"x": [0.5, 0.25], **long}, keywords=["acc", "loss", "finished"])
    rc, _, err = run_hpsearch(s.args("--num_jobs=2"), tmp_path, timeout=120)
    assert rc == 0, err
    rc, out, err = run_hpsearch(["report", "--terminal", "--top", "3", str(s.out_dir)],
                                tmp_path)
    assert rc == 0, err
    lines = out.splitlines()
    assert all(len(line) <= 100 for line in lines)
    header = next(ln for ln in lines if ln.startswith("rank"))
    table = lines[lines.index(header):]
    assert len([ln for ln in table if ln.split()[0].isdigit()]) == 3
    assert "not shown, too wide" in table[-1]
    assert not any(str(tmp_path) in ln for ln in table)  # no path columns
    assert "0.0001235" in out or "0.0002469" in out  # 4 significant digits
    assert "0.000123456" not in out


def test_report_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    s = write_search(tmp_path, {"x": [1]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    for args in (["report", str(tmp_path / "empty")], ["report", str(tmp_path / "missing")],
                 ["report", "--top", "0", "--terminal", str(s.out_dir)],
                 ["report", str(s.out_dir), "-o", str(tmp_path / "no" / "such" / "r.html")],
                 ["report", "--terminal", "-o", "x.html", str(s.out_dir)],
                 ["export", "--format", "xml", str(s.out_dir)],
                 ["export", "--format", "json", str(tmp_path / "empty")],
                 ["seeds", str(tmp_path / "empty")],
                 ["seeds", "--top", "0", str(s.out_dir)],
                 ["seeds", "--seed_arg", "--seed", str(s.out_dir)]):
        rc, out, err = run_hpsearch(args, tmp_path)
        assert rc == 2, (args, out, err)
        assert err.startswith("hpsearch: error: ") and err.count("\n") == 1, (args, err)
    for command in ("report", "export", "seeds"):
        rc, out, _ = run_hpsearch([command, "--help"], tmp_path)
        assert rc == 0 and "Usage: hpsearch " + command in out


def test_report_shows_pruned_runs_and_importance_at_the_deepest_common_step(asha, tmp_path):
    out, rows = asha
    rc, _, err = run_hpsearch(["report", str(out), "-o", str(tmp_path / "r.html")], tmp_path)
    assert rc == 0, err
    data = report_data(tmp_path / "r.html")
    runs = data["runs"]
    by_id = {r["run_id"]: r for r in rows}
    pruned = [r for r in rows if r["status"] == "pruned"]
    assert len(data["pruned"]) == len(pruned)
    for i in data["pruned"]:  # each at its last report, with its step
        row = by_id[runs["id"][i]]
        assert row["status"] == "pruned"
        assert runs["m"]["val_loss"][i] == float(row["val_loss"])
        assert runs["step"][i] == float(row["steps"])
    finished = len(rows) - len(pruned)
    imp = data["importance"]
    assert imp["note"] is None, imp
    step, reached, told = BASIS.fullmatch(imp["basis"]).groups()
    steps = sorted((float(r["steps"]) for r in rows), reverse=True)
    assert float(step) == steps[MIN_RUNS - 1]  # the deepest step 11 runs reached
    assert int(reached) == sum(s >= float(step) for s in steps) >= MIN_RUNS
    assert int(told) == finished
    assert {name for name, _ in imp["values"]} == {"lr", "width", "dropout"}
    assert abs(sum(v for _, v in imp["values"]) - 1) < 0.01
    assert data["steps"] == list(range(1, 28))  # the history can show each epoch


def test_importance_of_enough_finished_runs_reads_their_final_values(tmp_path):
    built = synthetic.build(tmp_path / "s", 30, steps=9, gpus=2)
    rc, _, err = run_hpsearch(["report", str(built.out_dir)], tmp_path)
    assert rc == 0, err
    imp = report_data(built.out_dir / "report.html")["importance"]
    assert built.statuses["finished"] >= MIN_RUNS
    assert imp["basis"] == f"the final values of {built.statuses['finished']} finished runs"
    assert {name for name, _ in imp["values"]} == {"lr", "width", "dropout", "opt"}


def test_status_ranks_finished_runs_first_then_pruned_ones_with_their_step(asha, tmp_path):
    out, rows = asha
    rc, text, err = run_hpsearch(["status", str(out), "--top", "30"], tmp_path)
    assert rc == 0, err
    lines = text.splitlines()
    head = next(k for k, line in enumerate(lines) if " best by " in line)
    assert lines[head].endswith("30 best by val_loss (ascending), finished runs first, then "
                                "pruned runs by their last report:"), text
    listed = lines[head + 1:]
    for line, row in zip(listed, rows, strict=True):  # the CSV's order
        value = f"val_loss={float(row['val_loss']):.6g}"
        if row["status"] == "pruned":
            value += f" @ step {float(row['steps']):g} (pruned)"
        assert line.startswith(f"  {value}  {row['run_id']}  lr="), (line, row)


def test_a_curve_point_without_a_finite_step_costs_only_that_point(tmp_path):
    built = synthetic.build(tmp_path / "s", 12, steps=6, gpus=1)
    run_dir = sorted((built.out_dir / "runs").iterdir())[0]
    curve = run_dir / "out" / "hpsearch_report.jsonl"
    kept = curve.read_text()
    curve.write_text(kept + '{"step": NaN, "loss": 1.0}\n{"step": Infinity, "loss": 2.0}\n')
    rc, _, err = run_hpsearch(["report", str(built.out_dir)], tmp_path)
    assert rc == 0, err
    data = report_data(built.out_dir / "report.html")
    (got,) = [c for c in data["curves"] if data["runs"]["id"][c["run"]] == run_dir.name]
    assert got["step"] == [json.loads(line)["step"] for line in kept.splitlines()]
