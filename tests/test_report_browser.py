"""``hpsearch report`` in a real headless browser (Debian's Chromium, network closed).

Each report comes from a real search (real ``hpsearch`` processes and sims) or from a
synthetic directory written with hpsearch's own writers (pruned runs, GPUs). The page must
finish drawing with no JavaScript error, ask for nothing but its own file, and every
section must hold the right number of points, lines and bars, counted in the page's DOM
(plotly draws SVG: ``path.point`` per marker, ``.barlayer .point`` per bar, a
``path.js-line`` per line segment, a ``.y-axis`` per parallel-coordinates axis) against
counts taken from ``search_results.csv``. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import synthetic
from browser import (
    LOCAL_SCHEMES,
    console_errors,
    load_report,
    open_browser,
    requests_made,
    require_browser,
    screenshot,
)
from conftest import REPO, run_hpsearch, wait_for
from test_report_cli import BASIS, asha_search, results

#: what each plot on the page holds, read from its DOM
PLOTS_JS = """
return Array.from(document.querySelectorAll('[data-points]')).map(e => ({
  id: e.id, section: e.closest('section').id, param: e.dataset.param || null,
  given: Number(e.dataset.points),
  points: e.querySelectorAll('.scatterlayer path.point').length,
  bars: e.querySelectorAll('.barlayer .point').length,
  lines: e.querySelectorAll('.scatterlayer path.js-line').length,
  axes: e.querySelectorAll('.parcoords .y-axis').length,
  front: e.dataset.front === undefined ? null : Number(e.dataset.front),
  pruned: e.dataset.pruned === undefined ? null : Number(e.dataset.pruned),
  infeasible: e.dataset.infeasible === undefined ? null : Number(e.dataset.infeasible)}));
"""

MO_SIM = '''
import argparse, os, sys
from hpsearch import report

p = argparse.ArgumentParser()
p.add_argument("--out_dir")
p.add_argument("--x", type=float)
p.add_argument("--opt")
p.add_argument("--fail", action="store_true")
a = p.parse_args()
if a.fail:
    print("step 1: loss 0.5", file=sys.stderr)
    print("FloatingPointError: loss diverged at step 2", file=sys.stderr)
    sys.exit(3)
offset = 0.0 if a.opt == "sgd" else 0.25
for step in range(1, 6):
    report(step=step, loss=(a.x - 1) ** 2 + offset + 1.0 / step)
os.makedirs(a.out_dir, exist_ok=True)
with open(os.path.join(a.out_dir, "perf.txt"), "w") as f:
    f.write(f"loss {(a.x - 1) ** 2 + offset}\\ncost {(a.x - 3) ** 2 + offset}\\nfinished 1\\n")
'''
#: 9 x values x 2 optimisers; x=4 fails; the front is sgd at x = 1, 1.5, 2, 2.5, 3
MO_SEARCH = {"script": "sim.py", "summary_file": "perf.txt", "metrics": ["loss", "cost"],
             "objective": ["loss", "cost"], "direction": ["minimize", "minimize"],
             "algorithm": "grid",
             "parameters": {"x": [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4], "opt": ["sgd", "adam"],
                            "fail": [False]},
             "conditions": [[{"x": [4]}, {"fail": [True]}]]}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    require_browser()
    driver = open_browser(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def open_report(browser: Any, out_dir: Path, shot: Path) -> list[dict[str, Any]]:
    """Write the report, load it, check it drew cleanly and offline; its plots."""
    rc, out, err = run_hpsearch(["report", str(out_dir)], out_dir.parent)
    assert rc == 0, err
    browser.get("about:blank")
    browser.get_log("performance")
    browser.get_log("browser")
    page = out_dir / "report.html"
    assert load_report(browser, page) == "ok", browser.execute_script(
        "return window.hpsearchReport.errors")
    assert console_errors(browser) == []
    assert browser.execute_script("return window.hpsearchReport.errors") == []
    asked = requests_made(browser)
    assert page.as_uri() in asked
    assert [u for u in asked if not u.startswith((*LOCAL_SCHEMES, "chrome:"))] == []
    assert [u for u in asked if u.startswith("file:") and u != page.as_uri()] == []
    screenshot(browser, shot)
    assert shot.stat().st_size > 10_000
    return browser.execute_script(PLOTS_JS)


def section(plots: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [p for p in plots if p["section"] == name]


def test_logreg_grid_report_in_browser(tmp_path, browser):
    out = tmp_path / "logreg"
    rc, _, err = run_hpsearch(["--grid_module=sims.logreg.hpsearch_config",
                               f"--run_cwd={REPO / 'sims' / 'logreg'}", f"--out_dir={out}",
                               "--visible_gpus=-1", "--num_jobs=2"], REPO, timeout=300)
    assert rc == 0, err
    rows = results(out)
    finished = [r for r in rows if r["status"] == "finished"]
    assert len(rows) == len(finished) == 27
    plots = open_report(browser, out, tmp_path / "logreg.png")

    history = section(plots, "history")
    assert [p["points"] for p in history] == [27, 27]
    assert [p["lines"] for p in history] == [1, 1]  # best so far
    (parcoords,) = section(plots, "parcoords")
    assert parcoords["given"] == 27 and parcoords["axes"] == 4 + 1  # lr, l2, batch, epochs
    slices = section(plots, "slices")
    assert sorted(p["param"] for p in slices) == ["batch_size", "epochs", "l2", "lr"]
    assert all(p["points"] == 27 for p in slices)
    (importance,) = section(plots, "importance")
    assert importance["bars"] == 4
    (curves,) = section(plots, "curves")
    assert curves["given"] == 0 and curves["lines"] == 0
    (timeline,) = section(plots, "timeline")
    assert timeline["bars"] == 27
    lanes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#plot-timeline .yaxislayer-above text'))"
        ".map(t => t.textContent)")
    assert sorted(lanes) == ["slot 1", "slot 2"]
    assert section(plots, "pareto") == []
    assert browser.execute_script("return document.getElementById('pareto').hidden")
    assert browser.execute_script(
        "return document.querySelectorAll('#failures tr.failure').length") == 0
    best = max(finished, key=lambda r: float(r["acc_test"]))
    summary = browser.execute_script("return document.getElementById('summary').innerText")
    assert f"run {best['run_id']}" in summary
    assert browser.execute_script(
        "return document.querySelector('.pill.finished').dataset.count") == "27"
    rerun = browser.execute_script("return document.getElementById('rerun').textContent")
    assert f"--lr={best['lr']}" in rerun and "logreg.py" in rerun


def test_multi_objective_search_with_curves_and_failures_in_browser(tmp_path, browser):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "sim.py").write_text(MO_SIM)
    (proj / "mo_search.json").write_text(json.dumps(MO_SEARCH))
    out = tmp_path / "mo"
    rc, _, err = run_hpsearch(["--search_file=proj/mo_search.json", "--run_cwd=proj",
                               f"--out_dir={out}", "--visible_gpus=-1", "--num_jobs=2"],
                              tmp_path, timeout=300)
    assert rc == 1, err  # two runs failed
    rows = results(out)
    assert [r["status"] for r in rows].count("finished") == 16
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 2
    plots = open_report(browser, out, tmp_path / "mo.png")

    assert [p["points"] for p in section(plots, "history")] == [16, 16]
    (parcoords,) = section(plots, "parcoords")
    assert parcoords["axes"] == 3 + 2  # x, opt, fail; loss, cost
    slices = {p["param"]: p["points"] for p in section(plots, "slices")}
    assert slices == {"x": 16, "opt": 16, "fail": 16}
    categories = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-param=opt] .xtick text'))"
        ".map(t => t.textContent)")
    assert categories == ["sgd", "adam"]
    (importance,) = section(plots, "importance")
    assert importance["bars"] == 2  # x and opt vary among the finished runs
    (curves,) = section(plots, "curves")
    assert curves["given"] == curves["lines"] == 16 and curves["pruned"] == 0
    (timeline,) = section(plots, "timeline")
    assert timeline["bars"] == 18
    (pareto,) = section(plots, "pareto")
    assert pareto["points"] == 16 and pareto["front"] == 5
    front = browser.execute_script(
        "const gd = document.querySelector('#plot-pareto > div');"
        "return gd.data[1].x.map((x, k) => [x, gd.data[1].y[k]]);")
    assert sorted(front) == [[0.0, 4.0], [0.25, 2.25], [1.0, 1.0], [2.25, 0.25], [4.0, 0.0]]
    failures = browser.execute_script(
        "return Array.from(document.querySelectorAll('#failures tr.failure'))"
        ".map(tr => [tr.dataset.run, tr.innerText])")
    assert sorted(run for run, _ in failures) == sorted(r["run_id"] for r in failed)
    for _run, text in failures:
        assert "exit status 3" in text and "loss diverged at step 2" in text


CONSTRAINED_SIM = """
import argparse, os

p = argparse.ArgumentParser()
p.add_argument("--out_dir")
p.add_argument("--x", type=float)
a = p.parse_args()
os.makedirs(a.out_dir, exist_ok=True)
with open(os.path.join(a.out_dir, "perf.txt"), "w") as f:
    f.write(f"loss {(a.x - 6) ** 2}\\nmem {a.x}\\nfinished 1\\n")
"""
#: x = 0..8; x > 4 breaks the constraint, and x = 6 has the lowest loss: the best feasible
#: run is x = 4 (loss 4)
CONSTRAINED_SEARCH = {"script": "sim.py", "summary_file": "perf.txt",
                      "metrics": ["loss", "mem"], "objective": "loss",
                      "direction": "minimize", "algorithm": "grid",
                      "constraints": ["mem <= 4"],
                      "parameters": {"x": [float(x) for x in range(9)]}}
#: the traces of a plot: name, x, y
TRACES_JS = """
const gd = document.querySelector(arguments[0]);
return gd.data.map(t => [t.name, Array.from(t.x || []), Array.from(t.y || [])]);
"""


def test_infeasible_runs_are_marked_in_the_plots_in_browser(tmp_path, browser):
    """A grid search with ``constraints``: the four runs that break one are crosses of their
    own in the history and the slices, a ``feasible`` axis of the parallel coordinates, and
    the best-so-far line follows the feasible runs only (its best is x = 4, not x = 6)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "sim.py").write_text(CONSTRAINED_SIM)
    (proj / "search.json").write_text(json.dumps(CONSTRAINED_SEARCH))
    out = tmp_path / "constrained"
    rc, _, err = run_hpsearch(["--search_file=proj/search.json", "--run_cwd=proj",
                               f"--out_dir={out}", "--visible_gpus=-1", "--num_jobs=2"],
                              tmp_path, timeout=300)
    assert rc == 0, err
    rows = results(out)
    broken = sorted(int(r["trial"]) for r in rows if r["feasible"] == "0")
    assert len(rows) == 9 and len(broken) == 4
    plots = open_report(browser, out, tmp_path / "constrained.png")

    history = section(plots, "history")
    assert [(p["points"], p["infeasible"]) for p in history] == [(9, 4), (9, 4)]
    traces = browser.execute_script(TRACES_JS, "#plot-history-trial")
    named = {name.split(" (")[0]: (xs, ys) for name, xs, ys in traces}
    assert sorted(named["infeasible"][0]) == broken
    assert len(named["finished"][0]) == 5
    assert min(named["best so far"][1]) == 4.0  # x = 4, the best feasible run
    (parcoords,) = section(plots, "parcoords")
    assert parcoords["axes"] == 1 + 1 + 1 and parcoords["infeasible"] == 4  # x; loss; feasible
    (slice_x,) = section(plots, "slices")
    assert slice_x["points"] == 9 and slice_x["infeasible"] == 4
    hovers = browser.execute_script(
        "return document.querySelector('#plot-history-trial').data[1].text")
    assert all("infeasible: breaks mem &lt;= 4.0" in text for text in hovers), hovers  # HTML


def test_pruned_runs_and_gpu_lanes_in_browser(tmp_path, browser):
    built = synthetic.build(tmp_path / "synthetic", 60, steps=9, gpus=3, running=2)
    plots = open_report(browser, built.out_dir, tmp_path / "synthetic.png")
    (curves,) = section(plots, "curves")
    assert curves["lines"] == built.curves
    assert curves["pruned"] == built.pruned_with_curve == built.statuses["pruned"]
    marks = browser.execute_script(
        "return document.querySelectorAll('#plot-curves .scatterlayer .trace:last-child "
        "path.point').length")
    assert marks == built.statuses["pruned"]
    (timeline,) = section(plots, "timeline")
    assert timeline["bars"] == 60
    lanes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#plot-timeline .yaxislayer-above text'))"
        ".map(t => t.textContent)")
    assert sorted(lanes) == ["GPU 0", "GPU 1", "GPU 2"]
    summary = browser.execute_script("return document.getElementById('summary').innerText")
    assert "GPU-hours" in summary
    assert browser.execute_script(
        "return document.querySelector('.pill.pruned').dataset.count") == str(
        built.statuses["pruned"])


#: the hover texts of the history's pruned markers (its second trace)
PRUNED_HOVERS_JS = "return document.getElementById('plot-history-trial').data[1].text;"


def choose_history_step(browser: Any, value: str) -> dict[str, Any]:
    """Pick an option of the history's step control; the by-trial plot once redrawn."""
    browser.execute_script(
        "const s = document.getElementById('history-step'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('change'));", value)
    wait_for(lambda: browser.execute_script(
        "const e = document.getElementById('plot-history-trial');"
        "return e.querySelectorAll('.scatterlayer path.point').length"
        " === Number(e.dataset.points)"), what="the history redrawn")
    (plot,) = [p for p in browser.execute_script(PLOTS_JS) if p["id"] == "plot-history-trial"]
    return plot


def test_asha_search_report_shows_pruned_runs_in_browser(tmp_path, browser):
    out = tmp_path / "curves"
    rows = asha_search(out)
    pruned = [r for r in rows if r["status"] == "pruned"]
    finished = len(rows) - len(pruned)
    plots = open_report(browser, out, tmp_path / "asha.png")

    history = section(plots, "history")  # every run: finished ones and pruned ones apart
    assert [p["points"] for p in history] == [30, 30]
    assert [p["pruned"] for p in history] == [len(pruned)] * 2
    assert [p["lines"] for p in history] == [1, 1]  # best so far, of the finished runs
    hovers = browser.execute_script(PRUNED_HOVERS_JS)
    assert len(hovers) == len(pruned)
    assert all(re.search(r"pruned at step \d+ ", text) for text in hovers), hovers
    (parcoords,) = section(plots, "parcoords")
    assert parcoords["given"] == 30 and parcoords["pruned"] == len(pruned)
    assert parcoords["axes"] == 3 + 1 + 1  # lr, width, dropout; val_loss; last step
    slices = section(plots, "slices")
    assert sorted(p["param"] for p in slices) == ["dropout", "lr", "width"]
    assert all(p["points"] == 30 and p["pruned"] == len(pruned) for p in slices), slices
    (importance,) = section(plots, "importance")
    assert importance["bars"] == 3
    method = browser.execute_script(
        "return document.getElementById('importance-method').textContent")
    assert BASIS.search(method) and f"; {finished} finished)" in method, method
    (curves,) = section(plots, "curves")
    assert curves["lines"] == 30 and curves["pruned"] == len(pruned)

    steps = browser.execute_script(
        "return Array.from(document.querySelectorAll('#history-step option'))"
        ".map(o => o.textContent)")
    assert steps == ["final value"] + [f"value at step {s}" for s in range(1, 28)]
    at_first = choose_history_step(browser, "1")  # every run reported epoch 1
    assert at_first["points"] == 30 and at_first["pruned"] == len(pruned)
    at_last = choose_history_step(browser, "27")  # only the finished runs got to 27
    assert at_last["points"] == finished and at_last["pruned"] == 0
    deepest = max(float(r["steps"]) for r in pruned)
    beyond = choose_history_step(browser, f"{deepest:g}")
    assert beyond["points"] == sum(float(r["steps"]) >= deepest for r in rows)
    final = choose_history_step(browser, "")
    assert final["points"] == 30 and final["pruned"] == len(pruned)
    assert browser.execute_script("return window.hpsearchReport.errors") == []
    assert console_errors(browser) == []


def test_brackets_and_pbt_schedule_in_browser(tmp_path, browser):
    """A bohb search's report draws its brackets (a point per finished run at its budget, a
    line per promotion); a pbt search's the best member's learning rate, segment by
    segment, back through the runs it continued."""
    from test_multifidelity import budget_file, rows_of, schedule_search

    path = budget_file(tmp_path, "bohb", 12, {"parameter": "epochs", "min": 1, "max": 9,
                                              "eta": 3})
    out = tmp_path / "bohb"
    rc, _, err = run_hpsearch([f"--search_file={path}", f"--run_cwd={path.parent}",
                               f"--out_dir={out}", "--visible_gpus=-1", "--num_jobs=2"],
                              tmp_path, timeout=300)
    assert rc == 0, err
    rows = rows_of(out)
    plots = open_report(browser, out, tmp_path / "bohb.png")
    (brackets,) = section(plots, "lineage")
    assert brackets["points"] == len(rows)
    assert brackets["lines"] == sum(1 for r in rows if r["continues"])
    assert not browser.execute_script("return document.getElementById('lineage').hidden")

    path = schedule_search(tmp_path, algorithm="pbt", pbt={
        "population": 4, "interval": 10, "parameter": "total_steps", "segments": 3})
    out = tmp_path / "pbt"
    rc, _, err = run_hpsearch([f"--search_file={path}", f"--run_cwd={path.parent}",
                               f"--out_dir={out}", "--visible_gpus=-1", "--num_jobs=2"],
                              tmp_path, timeout=300)
    assert rc == 0, err
    rows = {r["trial"]: r for r in rows_of(out)}
    best = min((r for r in rows.values() if r["segment"] == "2"), key=lambda r: float(r["loss"]))
    chain = [best]
    while chain[0]["continues"]:
        chain.insert(0, rows[chain[0]["continues"]])
    plots = open_report(browser, out, tmp_path / "pbt.png")
    (schedule,) = section(plots, "lineage")
    assert schedule["param"] == "lr" and schedule["points"] == 3
    drawn = browser.execute_script(
        "const gd = document.querySelector('#plot-lineage [data-param=lr]');"
        "return [gd.data[0].x, gd.data[0].y];")
    assert drawn == [[10, 20, 30], [float(r["lr"]) for r in chain]]
    assert "Population" in browser.execute_script(
        "return document.getElementById('lineage-title').textContent")
