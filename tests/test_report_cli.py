"""``hpsearch report`` without a browser: a running search, a dead driver's, a hypnettorch
directory, the terminal table, and one-line errors. The page's data is read back from the
written file (the JSON the page draws from)."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

from conftest import run_hpsearch, start_hpsearch, wait_for, write_search
from test_core_collect import HYPNETTORCH_MODULE

DATA = re.compile(r'<script type="application/json" id="hpsearch-data">(.*?)</script>', re.S)


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
