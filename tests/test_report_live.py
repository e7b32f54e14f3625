"""``hpsearch report OUT_DIR --serve``: the report served live, read by a real headless
Chromium while a real search runs, and by plain HTTP (urllib) for the token and the errors.

The browser test opens the printed URL while two runs of a slow sim are held (their curves
already reported), then lets them finish: the same page, never reloaded (a mark set on
``window`` at the start is still there), shows them finished -- the summary's counts, the
history's points, the curves and the timeline's bars, counted in its DOM -- with no
JavaScript error and no request anywhere but its own server.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from browser import (
    LOCAL_SCHEMES,
    console_errors,
    open_browser,
    requests_made,
    require_browser,
    screenshot,
)
from conftest import run_hpsearch, start_hpsearch, wait_for, write_search
from serve_fixture import first_output

#: reports three steps of its curve, waits while HOLD exists (at most 60 s), then finishes
SLOW_SIM = '''
import argparse, os, time
from hpsearch import report

p = argparse.ArgumentParser()
p.add_argument("--out_dir")
p.add_argument("--x", type=float)
a = p.parse_args()
for step in (1, 2, 3):
    report(step=step, loss=a.x / step)
give_up = time.time() + 60
while os.path.exists({hold!r}) and time.time() < give_up:
    time.sleep(0.05)
os.makedirs(a.out_dir, exist_ok=True)
with open(os.path.join(a.out_dir, "perf.txt"), "w") as f:
    f.write(f"loss {{a.x / 4}}\\nfinished 1\\n")
'''

#: what the page shows, read from its DOM
PAGE_JS = """
const count = s => {
  const pill = document.querySelector('#summary .pill.' + s);
  return pill ? Number(pill.dataset.count) : 0;
};
const plot = id => document.getElementById(id);
return {finished: count('finished'), running: count('running'),
        history: plot('plot-history-trial').querySelectorAll('.scatterlayer path.point').length,
        curves: Number(plot('plot-curves').dataset.points || 0),
        curveLines: plot('plot-curves').querySelectorAll('.scatterlayer path.js-line').length,
        bars: plot('plot-timeline').querySelectorAll('.barlayer .point').length,
        axes: plot('plot-parcoords').querySelectorAll('.parcoords .y-axis').length,
        renders: Number(document.body.dataset.renders || 0),
        rendered: document.body.dataset.rendered,
        live: document.getElementById('live-status').textContent,
        mark: window.hpsearchLiveTestMark === 'same page'};
"""


def start_report(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """``hpsearch report ARGS --serve --port=0`` started; the URL it printed first."""
    proc = start_hpsearch(["report", *args, "--serve", "--port=0"], cwd)
    lines = first_output(proc, timeout=120)
    assert lines and lines[0].startswith("http://127.0.0.1:"), (lines, proc.poll())
    return proc, lines[0]


def stop_report(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C: the server ends cleanly (128 + SIGINT, its last line says it stopped)."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert err.rstrip().endswith("SIGINT: stopped serving the report"), err
    return err


def fetch(url: str, headers: dict[str, str] | None = None,
          method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    require_browser()
    driver = open_browser(tmp_path / "chromium-profile", loopback=True)
    yield driver
    driver.quit()


def held_search(tmp_path: Path, procs: list[subprocess.Popen[str]]
                ) -> tuple[Path, Path, subprocess.Popen[str]]:
    """A grid search of :data:`SLOW_SIM` over x = 1, 2, both runs at once, held once both
    reported their 3 steps: its directory, the file that holds it, its driver."""
    hold = tmp_path / "HOLD"
    hold.write_text("")
    sim = tmp_path / "proj"
    sim.mkdir()
    (sim / "sim.py").write_text(SLOW_SIM.format(hold=str(hold)))
    (sim / "search.json").write_text(json.dumps({
        "script": "sim.py", "summary_file": "perf.txt", "metrics": ["loss"],
        "objective": "loss", "direction": "minimize", "algorithm": "grid",
        "parameters": {"x": [1, 2]}}))
    out = tmp_path / "out"
    driver = start_hpsearch(["--search_file=proj/search.json", "--run_cwd=proj",
                             f"--out_dir={out}", "--visible_gpus=-1", "--num_jobs=2"],
                            tmp_path, stderr=subprocess.DEVNULL)
    procs.append(driver)
    wait_for(lambda: len(curves(out)) == 2 and all(
        p.read_text().count("\n") == 3 for p in curves(out)),
             timeout=120, what="both runs reported 3 steps")
    return out, hold, driver


def curves(out: Path) -> list[Path]:
    """The curve files the runs of ``out`` wrote with ``hpsearch.report``."""
    return sorted(out.glob("runs/*/out/hpsearch_report.jsonl"))


def test_served_report_shows_a_run_that_finishes_without_a_reload(tmp_path, browser, procs):
    out, hold, driver = held_search(tmp_path, procs)
    server, url = start_report([str(out)], tmp_path)
    procs.append(server)

    browser.get_log("performance")  # the start page's requests
    browser.get(url)
    wait_for(lambda: browser.execute_script("return document.body.dataset.rendered") == "ok",
             timeout=120, what="the page drew")
    browser.execute_script("window.hpsearchLiveTestMark = 'same page';")
    page = browser.execute_script(PAGE_JS)
    assert (page["finished"], page["running"], page["history"]) == (0, 2, 0), page
    assert page["curves"] == 2 and page["bars"] == 2, page

    hold.unlink()  # the runs finish
    assert driver.wait(timeout=120) == 0, driver.stderr.read() if driver.stderr else ""
    shown = {}

    def both_finished() -> bool:
        shown.update(browser.execute_script(PAGE_JS))
        return shown["finished"] == 2 and shown["history"] == 2

    wait_for(both_finished, timeout=120, poll=0.5, what="the page showing both runs finished")
    assert shown["mark"], "the page was reloaded"
    assert shown["running"] == 0 and shown["curves"] == 2 and shown["bars"] == 2, shown
    assert shown["axes"] == 2, shown  # x and loss: WebGL drew the parallel coordinates
    assert shown["renders"] >= 2 and shown["rendered"] == "ok", shown
    assert shown["live"].startswith("live: "), shown
    assert console_errors(browser) == []
    assert browser.execute_script("return window.hpsearchReport.errors") == []
    origin = url.split("?")[0]
    asked = [u for u in requests_made(browser) if not u.startswith(LOCAL_SCHEMES)]
    assert asked and all(u.startswith(origin) for u in asked), asked
    screenshot(browser, tmp_path / "live.png")
    stop_report(server)


def test_served_data_follows_the_runs_of_a_dead_driver(tmp_path, procs):
    """Once the driver is killed, nothing but the runs' own files changes: a point one of
    them reports, then their ends, still reach the page's data."""
    out, hold, driver = held_search(tmp_path, procs)
    server, url = start_report([str(out)], tmp_path)
    procs.append(server)
    base, token = url.split("/?token=")
    auth = {"Authorization": f"Bearer {token}"}

    def data(since: str = "") -> tuple[int, dict[str, Any]]:
        status, body = fetch(f"{base}/data.json?since={since}", auth)
        return status, json.loads(body) if body else {}

    _, first = data()
    assert first["data"]["runs"]["status"] == ["running", "running"]
    assert sorted(len(c["step"]) for c in first["data"]["curves"]) == [3, 3]
    assert data(first["version"]) == (204, {})
    driver.send_signal(signal.SIGKILL)  # its runs go on
    driver.wait(timeout=60)
    journal = (out / "journal.jsonl").stat()
    with open(curves(out)[0], "a") as f:  # a running run reports one more step
        f.write(json.dumps({"step": 4, "loss": 0.125}) + "\n")
    grown: dict[str, Any] = {}
    wait_for(lambda: grown.update(data(first["version"])[1]) or bool(grown),
             timeout=60, poll=0.2, what="newer data")
    assert sorted(len(c["step"]) for c in grown["data"]["curves"]) == [3, 4]
    assert grown["version"] != first["version"]
    hold.unlink()  # the runs end: their exit_code and summary, judged from the run dirs
    ended: dict[str, Any] = {}
    wait_for(lambda: ended.update(data(grown["version"])[1]) or ended.get("data", {}).get(
        "runs", {}).get("status") == ["finished", "finished"], timeout=60, poll=0.2,
             what="both runs finished in the data")
    assert 'data-count="2">2 finished' in ended["summary"]
    assert (out / "journal.jsonl").stat().st_mtime_ns == journal.st_mtime_ns
    stop_report(server)


def test_served_report_needs_its_token_and_serves_nothing_else(tmp_path, procs):
    s = write_search(tmp_path, {"x": [1, 2]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    server, url = start_report([str(s.out_dir)], tmp_path)
    procs.append(server)
    base, token = url.split("/?token=")
    assert (s.out_dir / "report.token").read_text().strip() == token
    assert (s.out_dir / "report.token").stat().st_mode & 0o777 == 0o600
    for path in ("/", "/data.json", "/?token=wrong", "/data.json?token=", "/report.token"):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            status, body = fetch(base + path, headers)
            assert status == 403 and b"needs its token" in body and len(body) < 200, path
    files = sorted(p.name for p in s.out_dir.iterdir())
    status, page = fetch(url)
    assert status == 200 and b'id="hpsearch-live"' in page and b"data-count=\"2\"" in page
    auth = {"Authorization": f"Bearer {token}"}
    status, body = fetch(base + "/data.json", auth)
    got = json.loads(body)
    assert status == 200 and got["data"]["runs"]["status"] == ["finished", "finished"]
    assert fetch(f"{base}/data.json?since={got['version']}", auth) == (204, b"")
    assert fetch(base + "/search.json", auth)[0] == 404
    for method in ("POST", "PUT", "DELETE"):
        assert fetch(url, auth, method)[0] == 501
    assert sorted(p.name for p in s.out_dir.iterdir()) == files  # nothing written
    stop_report(server)
    # restarted: the same token (a page left open keeps working)
    server, again = start_report([str(s.out_dir)], tmp_path)
    procs.append(server)
    assert again.split("/?token=")[1] == token
    stop_report(server)


def test_served_report_errors_are_one_line_and_write_nothing(tmp_path):
    s = write_search(tmp_path, {"x": [1]})
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    (tmp_path / "empty").mkdir()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    with taken:
        port = taken.getsockname()[1]
        cases = {
            ("--serve", "--host=0.0.0.0", "--no_token"): "--no_token with --host=0.0.0.0",
            ("--serve", "--port=70000"): "--port=70000 is out of range",
            ("--serve", f"--port={port}"): f"cannot listen on 127.0.0.1:{port}",
            ("--serve", "--port=x"): "--port",
            ("--serve", "--host=no.such.host.invalid"): "cannot listen on no.such.host",
            ("--serve", "-o", "r.html"): "--serve serves the page and writes no file",
            ("--serve", "--terminal"): "leave out --terminal",
            ("--port=9000",): "--port only apply with --serve",
            ("--serve", "--token-file", str(tmp_path / "missing")): "cannot read --token-file",
        }
        for args, words in cases.items():
            rc, out, err = run_hpsearch(["report", str(s.out_dir), *args], tmp_path)
            assert rc == 2 and out == "", (args, out, err)
            assert err.startswith("hpsearch: error: ") and err.count("\n") == 1, (args, err)
            assert words in err, (args, err)
        rc, _, err = run_hpsearch(["report", str(tmp_path / "empty"), "--serve"], tmp_path)
        assert rc == 2 and err.count("\n") == 1, err
    assert not (s.out_dir / "report.token").exists()
    assert not (s.out_dir / "report.html").exists()
    assert list((tmp_path / "empty").iterdir()) == []
