"""The API's edges against a real service: every bad request is a 4xx with one line and
records nothing; the token on a non-loopback bind; external generators that work, crash,
hang or write garbage (the service answers all along and never stops for them)."""

from __future__ import annotations

import json
import sys

import pytest
import serve_fixture
from conftest import run_hpsearch, wait_for, write_search
from serve_fixture import (
    GENERATOR,
    Service,
    journal,
    raw,
    worker,
    write_yaml,
)

from hpsearch.client import Client, ClientError
from hpsearch.engine.journal import replay

services = serve_fixture.services  # the fixture, under its name for pytest

SEARCH = """
algorithm: random
num_trials: 6
metrics: {metrics}
parameters:
  x: {{method: uniform, low: 0.0, high: 1.0}}
"""


def start(tmp_path, services, text: str, *args: str) -> Service:
    search = write_yaml(tmp_path / "search.yaml", text)
    service = Service([f"--search_file={search}", f"--out_dir={tmp_path / 'out'}", *args],
                      tmp_path).start()
    services.append(service)
    return service


def test_every_bad_request_is_a_4xx_with_one_line_and_records_nothing(tmp_path, services):
    service = start(tmp_path, services, SEARCH.format(metrics="[loss, acc]"))
    c = service.client()
    wait_for(lambda: c.status(1)["points"]["new"] == 6, 30, "the first points")
    point = c.get_points(1, status="new", limit=1)[0]["id"]
    before = journal(tmp_path / "out")
    put = f"{service.url}/requests/1/points/{point}"
    bad = [
        ("PUT", put, b'{"loss": 0.5', 400, "not valid JSON"),
        ("PUT", put, b'{"loss": "abc"}', 400, "loss: Input should be a valid number"),
        ("PUT", put, b'{"loss": NaN}', 400, "finite"),
        ("PUT", put, b'{"loss": true}', 400, "valid number"),
        ("PUT", put, b'{"loss": 0.5}', 400, "report them all"),  # two metrics
        ("PUT", put, b'{"metrics": {"loss": 1}}', 400, "lacks metric 'acc'"),
        ("PUT", put, b'{"metrics": {"loss": 1, "acc": 2, "f1": 3}}', 400, "unknown metric"),
        ("PUT", put, b'{"metrics": {"loss": [1, 2], "acc": 2}}', 400, "one number"),
        ("PUT", put, b'{"metrics": {"loss": "x", "acc": 2}}', 400, "metrics.loss"),
        ("PUT", put, b'{}', 400, "exactly one of loss, metrics, failure"),
        ("PUT", put, b'{"loss": 1, "failure": "x"}', 400, "exactly one"),
        ("PUT", put, b'{"los": 1}', 400, "los: Extra inputs are not permitted"),
        ("PUT", put, b'[1]', 400, "valid dictionary"),
        ("PUT", f"{service.url}/requests/1/points/99", b'{"failure": "x"}', 404,
         "there is no point 99"),
        ("PUT", f"{service.url}/requests/9/points/0", b'{"failure": "x"}', 404,
         "there is no request 9"),
        ("PUT", f"{service.url}/requests/1/points/x", b'{"failure": "x"}', 400, "point_id"),
        ("GET", f"{service.url}/requests/1/points?status=lost", None, 400, "status:"),
        ("GET", f"{service.url}/requests/1/points?limit=0", None, 400, "limit:"),
        ("GET", f"{service.url}/nowhere", None, 404, "Not Found"),
        ("POST", f"{service.url}/requests", b'{"search": []}', 400, "search:"),
        ("POST", f"{service.url}/requests", b'{"search": {}, "max_points": 0}', 400,
         "max_points"),
        ("POST", f"{service.url}/requests", b'{"search": {"parameters": {}}}', 400,
         "parameters must be a non-empty mapping"),
        ("POST", f"{service.url}/requests", b'{"search": {"parameters": {"x": [1]}, '
         b'"warm_start": ["out"]}}', 403, "the search sets warm_start"),
    ]
    for method, url, data, code, words in bad:
        status, body = raw(url, method, data, service.headers())
        assert status == code and list(body) == ["error"], (method, url, data, body)
        assert words in body["error"] and "\n" not in body["error"], (data, body)
    assert journal(tmp_path / "out") == before
    assert not (tmp_path / "out" / "requests").exists()
    ok = c.update_point(1, point, {"metrics": {"loss": 0.25, "acc": 0.5}})
    assert ok["status"] == "finished" and ok["loss"] == 0.25
    with pytest.raises(ClientError) as twice:
        c.update_point(1, point, {"failure": "again"})
    assert twice.value.status == 409 and "already reported" in twice.value.message
    assert c.status(1)["points"]["finished"] == 1  # at once; the journal within ms
    wait_for(lambda: sum(e["ev"] == "end" for e in journal(tmp_path / "out")) == 1, 30,
             "the report's end event")


def test_a_non_loopback_bind_checks_the_token_on_every_request(tmp_path, services):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    service = start(tmp_path, services, SEARCH.format(metrics="[loss]"), "--host=0.0.0.0",
                    f"--token-file={token}")
    url = service.url.replace("0.0.0.0", "127.0.0.1")  # connect over loopback only
    for path in ("/requests/1", "/requests/1/points", "/openapi.json", "/docs"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            status, body = raw(url + path, headers=headers)
            assert status == 401 and "token" in body["error"], (path, headers)
    with pytest.raises(ClientError) as refused:
        Client(url).status(1)
    assert refused.value.status == 401
    assert Client(url, token="s3cret-token").status(1)["request_id"] == 1
    status, spec = raw(url + "/openapi.json", headers={"Authorization": "Bearer s3cret-token"})
    assert status == 200 and "/requests/{rid}/points/{point_id}" in spec["paths"]


def generator_search(command: str, timeout: float = 60) -> str:
    return f"""
algorithm: external
generator: {command}
generator_timeout: {timeout}
num_trials: 8
parameters:
  x: {{method: uniform, low: -2.0, high: 2.0}}
  y: {{method: uniform, low: -1.0, high: 3.0}}
  optimizer: [sgd, momentum]
"""


def log_lines(tmp_path) -> list[dict]:
    path = tmp_path / "out" / "generator.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_example_generator_feeds_a_search_with_the_losses_so_far(tmp_path, services):
    service = start(tmp_path, services, generator_search(
        f"{sys.executable} {GENERATOR} --in %IN --out=%OUT --num %NUM_POINTS --max "
        "%MAX_POINTS"), "--num_points_per_generation=3")
    w = worker(service, cwd=tmp_path)
    out, err = w.communicate(timeout=120)
    assert w.returncode == 0, err
    status = service.client().status(1)
    assert status["points"]["finished"] == 8 and status["done"]
    calls = log_lines(tmp_path)
    assert calls and all(c["status"] == "ok" for c in calls)
    assert status["generator"]["calls"] == len(calls)
    given = json.loads((tmp_path / "out" / "generator" / "idds_input.json").read_text())
    assert given["opt_space"]["optimizer"] == ["sgd", "momentum"]
    assert all(set(point) == {"x", "y", "optimizer"} for point, _loss in given["points"])


FLAKY = """
import json, os, sys
state = sys.argv[1] + ".calls"
calls = int(open(state).read()) + 1 if os.path.exists(state) else 1
open(state, "w").write(str(calls))
mode = sys.argv[2]
if mode == "crash" and calls == 1:
    sys.exit("boom: the first call crashes")
if mode == "hang" and calls == 1:
    import time; time.sleep(60)
if mode == "malformed" and calls == 1:
    open(sys.argv[1], "w").write('[{"x": 1}]')  # lacks y and optimizer
    sys.exit(0)
data = json.load(open(sys.argv[3]))
n = 8 - len(data["points"])
json.dump([{"x": 0.1 * i, "y": 1.0, "optimizer": "sgd"} for i in range(n)],
          open(sys.argv[1], "w"))
"""


@pytest.mark.parametrize("mode,status,words", [
    ("crash", "crashed", "exit status 1: boom: the first call crashes"),
    ("hang", "timeout", "still running after 1s"),
    ("malformed", "malformed", "point 0 lacks y, optimizer"),
])
def test_a_failing_generator_is_logged_shown_and_retried_never_fatal(tmp_path, services, mode,
                                                                     status, words):
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY)
    service = start(tmp_path, services, generator_search(
        f"{sys.executable} {script} %OUT {mode} %IN", timeout=1))
    c = service.client()
    wait_for(lambda: any(line["status"] == status for line in log_lines(tmp_path)), 30,
             f"a {status} call in generator.log")
    first = log_lines(tmp_path)[0]
    assert first["status"] == status and words in first["detail"] and first["retry_in"] == 1
    shown = c.status(1)["generator"]  # the service answers while it retries
    assert shown["calls"] >= 1 and shown["last"]["status"] in (status, "ok")
    w = worker(service, cwd=tmp_path)
    out, err = w.communicate(timeout=120)
    assert w.returncode == 0, err
    final = c.status(1)
    assert final["points"]["finished"] == 8 and final["generator"]["failures_in_a_row"] == 0
    assert [line["status"] for line in log_lines(tmp_path)][-1] == "ok"


def test_a_generator_returning_nothing_ends_the_search(tmp_path, services):
    script = tmp_path / "empty.py"
    script.write_text("import json, sys\njson.dump([], open(sys.argv[1], 'w'))\n")
    service = start(tmp_path, services, generator_search(f"{sys.executable} {script} %OUT"))
    c = service.client()
    wait_for(lambda: c.status(1)["done"], 30, "the search to end")
    assert c.status(1)["points"] == {"new": 0, "running": 0, "finished": 0, "failed": 0}
    assert log_lines(tmp_path)[-1]["status"] == "empty"


def test_a_served_search_reads_its_warm_start_once(tmp_path, services):
    """``hpsearch serve --search_file`` tells its strategy an earlier search's finished runs
    (the ones that fit its space) and keeps them in ``warm_start.json``, as a search does."""
    write_search(tmp_path, {"x": [0]})
    earlier = write_yaml(tmp_path / "earlier.yaml", "script: sim.py\nsummary_file: perf.txt\n"
                         "metrics: [loss]\nalgorithm: random\nnum_trials: 6\nseed: 2\n"
                         "parameters: {x: {method: uniform, low: -1.0, high: 2.0}}\n")
    rc, _, err = run_hpsearch([f"--search_file={earlier}", "--run_cwd=proj",
                               f"--out_dir={tmp_path / 'earlier'}", "--visible_gpus=-1"],
                              tmp_path, timeout=120)
    assert rc == 0, err
    fit = [st for st in journal_runs(tmp_path / "earlier") if 0.0 <= st["x"] <= 1.0]
    service = start(tmp_path, services, SEARCH.format(metrics="[loss]")
                    + "warm_start: [earlier]\n")
    wait_for(lambda: (tmp_path / "out" / "warm_start.json").exists(), 30, "warm_start.json")
    saved = json.loads((tmp_path / "out" / "warm_start.json").read_text())
    assert sorted(r["config"]["x"] for r in saved["runs"]) == sorted(st["x"] for st in fit)
    assert f"warm_start: {len(fit)} finished run(s) of 1 search(es) are told to random" in (
        service.stderr())


def journal_runs(out_dir):
    return [st.config for st in replay(out_dir / "journal.jsonl").runs.values()
            if st.status == "finished"]
