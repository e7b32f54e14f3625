"""``hpsearch serve`` is safe by default (issue 19): a token always (on loopback too), no
command and no file outside the search directory from a request over HTTP, bounded requests
(how many live, body size, nesting, failure message), and no answer before the journal is
replayed. A real service, real HTTP, real files."""

from __future__ import annotations

import csv
import http.client
import json
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import serve_fixture
from conftest import run_hpsearch, wait_for
from serve_fixture import Service, raw, write_yaml

from hpsearch.client import Client, ClientError

services = serve_fixture.services  # the fixture, under its name for pytest

SEARCH = """
algorithm: {algorithm}
num_trials: {n}
seed: 4
parameters:
  x: {{method: uniform, low: -2.0, high: 2.0}}
  y: {{method: uniform, low: -1.0, high: 3.0}}
"""


def serve(tmp_path: Path, services: list[Service], *args: str, algorithm: str = "random",
          n: int = 6) -> Service:
    search = tmp_path / "search.yaml"
    if not search.exists():
        write_yaml(search, SEARCH.format(algorithm=algorithm, n=n))
    service = Service([f"--search_file={search}", f"--out_dir={tmp_path / 'out'}", *args],
                      tmp_path).start()
    services.append(service)
    return service


def post(service: Service, search: dict, **budget: int) -> tuple[int, dict]:
    body = json.dumps({"search": search, **budget}).encode()
    return raw(service.url + "/requests", "POST", body, service.headers())


def one_line(body: dict) -> str:
    assert list(body) == ["error"] and "\n" not in body["error"], body
    return body["error"]


def children(pid: int) -> set[int]:
    """The processes ``pid`` started that still run."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_a_request_over_http_runs_no_command_unless_the_owner_allows_it(tmp_path, services):
    marker = tmp_path / "pwned"
    generator = {"generator": f'sh -c "touch {marker}" %OUT', "num_trials": 3,
                 "parameters": {"x": [1, 2]}}
    service = serve(tmp_path, services)
    for search in (generator, {"script": "evil.py", "parameters": {"x": [1, 2]}},
                   {"config_template": "/etc/passwd", "parameters": {"x": [1, 2]}},
                   {"from_hydra": "/etc/passwd"},
                   {"hydra_config": "/etc/passwd", "parameters": {"x": [1, 2]}}):
        status, body = post(service, search)
        assert status == 403 and "--allow_commands" in one_line(body), body
    assert not marker.exists() and not (tmp_path / "out" / "requests").exists()
    service.stop()
    allowed = serve(tmp_path, services, "--allow_commands")
    status, body = post(allowed, generator)
    assert status == 201, body
    wait_for(marker.exists, 60, "the allowed generator to run")


def test_no_request_writes_outside_its_run_directories(tmp_path, services):
    outside = tmp_path / "x.txt"
    names = (str(outside), "../../../../x.txt", "sub/../../../../../x.txt")
    for allow in ([], ["--allow_commands"]):  # not even with --allow_commands
        service = serve(tmp_path, services, *allow)
        for name in names:
            status, body = post(service, {"summary_file": name, "metrics": ["echo PWNED #"],
                                          "num_trials": 1, "parameters": {"x": [1]}})
            assert status == 400 and "summary_file" in one_line(body), (name, body)
        assert not (tmp_path / "out" / "requests").exists()
        c = service.client()
        wait_for(lambda c=c: c.status(1)["points"]["new"], 30, "a point of request 1")
        c.update_point(1, c.get_points(1, status="new", limit=1)[0]["id"], 1.5)
        service.stop()
    assert not outside.exists() and not list(tmp_path.parent.glob("x.txt"))
    write_yaml(tmp_path / "escape.yaml", "summary_file: ../../x.txt\nnum_trials: 2\n"
               "parameters:\n  x: [1, 2]\n")
    rc, out, err = run_hpsearch(["serve", f"--search_file={tmp_path / 'escape.yaml'}",
                                 f"--out_dir={tmp_path / 'other'}", "--port=0"], tmp_path)
    assert rc == 2 and err.count("\n") == 1 and "summary_file" in err, err
    assert not (tmp_path / "other").exists()


def test_requests_beyond_max_requests_are_refused_and_start_nothing(tmp_path, services):
    service = serve(tmp_path, services, n=20)  # request 1 is live: 7 more by default
    space = {"parameters": {"x": {"method": "uniform", "low": 0, "high": 1}}}
    tpe = {**space, "algorithm": "tpe"}
    for _ in range(6):
        assert post(service, {**space, "algorithm": "random"}, max_points=1)[0] == 201
    before = children(service.proc.pid)
    assert post(service, tpe, max_points=4) == (201, {"request_id": 8})
    wait_for(lambda: children(service.proc.pid) - before, 60, "request 8's sampler process")
    before = children(service.proc.pid)
    status, body = post(service, tpe, max_points=4)
    assert status == 429 and "--max_requests=8" in one_line(body), body
    assert children(service.proc.pid) == before
    assert not (tmp_path / "out" / "requests" / "9").exists()
    c = service.client()
    wait_for(lambda: c.status(2)["points"]["new"] == 1, 30, "request 2's point")
    c.update_point(2, c.get_points(2, status="new")[0]["id"], 0.5)  # request 2 is done
    wait_for(lambda: c.status(2)["done"], 60, "request 2 to end")
    assert post(service, {**space, "algorithm": "random"}, max_points=1) == (
        201, {"request_id": 9})
    rc, out, err = run_hpsearch(["serve", "--help"], tmp_path)
    assert rc == 0 and "--max_requests" in out and "[default: 8]" in " ".join(out.split())


def test_a_token_is_needed_on_loopback_and_kept_in_a_private_file(tmp_path, services):
    service = serve(tmp_path, services)
    token_file = tmp_path / "out" / "service.token"
    assert service.token and token_file.read_text().strip() == service.token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, body = raw(service.url + "/requests/1", headers=headers)
        assert status == 401 and "token" in one_line(body)
    with pytest.raises(ClientError) as refused:
        Client(service.url, token=None).status(1)
    assert refused.value.status == 401
    assert Client(service.url, token_file=token_file).status(1)["request_id"] == 1
    service.stop()
    again = serve(tmp_path, services)  # workers holding the token keep working
    assert again.token == service.token
    assert Client(again.url, token_file=token_file).status(1)["request_id"] == 1


def test_no_token_only_on_loopback_and_with_a_warning(tmp_path, services):
    write_yaml(tmp_path / "search.yaml", SEARCH.format(algorithm="random", n=4))
    given = tmp_path / "token"
    given.write_text("s3cret\n")
    for extra in (["--host=0.0.0.0"], [f"--token-file={given}"]):
        rc, out, err = run_hpsearch(["serve", f"--search_file={tmp_path / 'search.yaml'}",
                                     f"--out_dir={tmp_path / 'o'}", "--port=0", "--no_token",
                                     *extra], tmp_path)
        assert rc == 2 and err.count("\n") == 1 and "--no_token" in err, err
        assert not (tmp_path / "o").exists()
    service = serve(tmp_path, services, "--no_token")
    assert service.token is None and "ANY user of this machine" in service.stderr()
    status, body = raw(service.url + "/requests/1")
    assert status == 200 and body["request_id"] == 1
    assert not (tmp_path / "out" / "service.token").exists()


def test_bodies_too_large_or_too_deep_are_refused_in_one_line(tmp_path, services):
    service = serve(tmp_path, services)
    c = service.client()
    wait_for(lambda: c.status(1)["points"]["new"] == 6, 30, "the first points")
    point = c.get_points(1, status="new", limit=1)[0]["id"]
    put = f"{service.url}/requests/1/points/{point}"
    for data, code, words in ((b"[" * 10_000_000, 413, "larger than"),
                              (b"[" * 100_000, 400, "nests"),
                              (b'{"failure": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400, "nests"),
                              (b'{"failure": "' + b"x" * 10_000_000 + b'"}', 413, "larger")):
        status, body = raw(put, "PUT", data, service.headers())
        assert status == code and words in one_line(body), (data[:20], body)
    # a string that never closes, full of escaped quotes: the nesting check reads it in one
    # pass (it searched from every quote before: about an hour of the event loop for this)
    unclosed = b'{"failure": "' + b'\\"' * 400_000 + b"[" * 40
    status, body = raw(put, "PUT", unclosed, service.headers())
    assert status == 400, body
    one_line(body)
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    status, body = post(service, {"parameters": {"x": deep}})
    assert status == 400 and "nests" in one_line(body)
    chunked = http.client.HTTPConnection(urllib.parse.urlsplit(service.url).netloc, timeout=60)
    chunked.request("PUT", f"/requests/1/points/{point}", body=iter([b"[" * 600_000] * 2),
                    headers={**service.headers(), "Content-Type": "application/json"},
                    encode_chunked=True)
    answer = chunked.getresponse()
    assert answer.status == 413 and "larger than" in one_line(json.loads(answer.read()))
    chunked.close()
    run_dir = tmp_path / "out" / "runs" / c.get_points(1, status="running")[0]["run_id"]
    assert not (run_dir / "exit_code").exists() and not (run_dir / "stderr.log").exists()
    assert "RecursionError" not in service.stderr() and "Traceback" not in service.stderr()
    assert c.update_point(1, point, 0.25)["status"] == "finished"  # it goes on


def test_a_long_failure_message_is_cut_with_a_marker(tmp_path, services):
    service = serve(tmp_path, services, n=1)
    c = service.client()
    wait_for(lambda: c.status(1)["points"]["new"] == 1, 30, "the point")
    point = c.get_points(1, status="new")[0]
    said = c.update_point(1, point["id"], {"failure": "boom " + "x" * 200_000})
    assert said["status"] == "failed"
    wait_for(lambda: c.status(1)["done"], 30, "the search to end")
    stderr_log = tmp_path / "out" / "runs" / point["run_id"] / "stderr.log"
    assert stderr_log.stat().st_size < 5000
    assert stderr_log.read_text().strip().endswith("more characters cut]")
    service.stop()
    with open(tmp_path / "out" / "search_results.csv", newline="") as f:
        row = next(csv.DictReader(f, delimiter=";"))
    assert row["failure_reason"].startswith("reported: boom xxx")
    assert len(row["failure_reason"]) < 5000 and os.path.getsize(f.name) < 10_000


def test_a_report_right_after_a_restart_is_taken_never_404(tmp_path, services):
    service = serve(tmp_path, services, "--num_points_per_generation=8", algorithm="tpe",
                    n=40)
    c = service.client(worker="w1")
    wait_for(lambda: c.status(1)["points"]["new"] == 8, 60, "the first points")
    for point in c.get_points(1, status="new", limit=4):
        c.update_point(1, point["id"], 1.0 + point["id"])
    held = []
    while len(held) < 4:
        held += c.get_points(1, status="new", limit=4 - len(held))
    wait_for(lambda: c.status(1)["points"]["finished"] == 4, 30, "the reports")
    service.kill()
    again = serve(tmp_path, services, "--num_points_per_generation=8", algorithm="tpe",
                  n=40)
    c = again.client(worker="w1")  # at once: the service answers only once it is restored
    shown = c.status(1)["points"]
    assert shown["finished"] == 4 and shown["running"] == 4, shown
    for point in held:
        assert c.update_point(1, point["id"], 0.5)["status"] == "finished"


def test_points_kept_ready_are_bounded_and_a_new_request_never_takes_a_stored_id(tmp_path,
                                                                                  services):
    serve(tmp_path, services).stop()  # the search directory, then a stored request that
    stored = tmp_path / "out" / "requests" / "2"  # cannot be restored
    stored.mkdir(parents=True)
    (stored / "request.json").write_text("not json\n")
    service = serve(tmp_path, services)
    assert "request 2" in service.stderr() and "is not served" in service.stderr()
    space = {"parameters": {"x": {"method": "uniform", "low": 0, "high": 1}},
             "algorithm": "random"}
    status, body = post(service, {"parameters": space["parameters"]}, max_points=5)
    assert status == 400 and "algorithm grid cannot walk parameter 'x'" in one_line(body), body
    status, body = post(service, space, max_points=5, num_points_per_generation=10**9)
    assert status == 400 and "num_points_per_generation" in one_line(body), body
    assert not (tmp_path / "out" / "requests" / "3").exists()
    assert post(service, space, max_points=5) == (201, {"request_id": 3})
    assert (stored / "request.json").read_text() == "not json\n"
    rc, out, err = run_hpsearch(["serve", f"--search_file={tmp_path / 'search.yaml'}",
                                 f"--out_dir={tmp_path / 'other'}",
                                 "--num_points_per_generation=1001"], tmp_path)
    assert rc == 2 and "--num_points_per_generation=1001" in err and len(
        err.strip().splitlines()) == 1, err
    assert not (tmp_path / "other").exists()


def test_a_service_whose_own_backend_cannot_run_the_search_is_refused_before_serving(
        tmp_path):
    """``hpsearch serve`` with a backend of its own (``--num_jobs=2``: two CPU slots) and
    runs of 4 CPUs: one line naming what a run asks and what there is, exit 2, before
    anything is served or written -- the refusal ``hpsearch`` itself gives."""
    (tmp_path / "sim.py").write_text("print('never runs')\n")
    write_yaml(tmp_path / "search.yaml", "script: sim.py\nsummary_file: perf.txt\n"
               "metrics: [loss]\nalgorithm: random\nnum_trials: 3\n"
               "parameters:\n  x: {method: uniform, low: 0, high: 1}\n")
    flags = [f"--search_file={tmp_path / 'search.yaml'}", f"--run_cwd={tmp_path}",
             "--num_jobs=2", "--cpus_per_run=4"]
    for command in (["serve", f"--out_dir={tmp_path / 'served'}"],
                    [f"--out_dir={tmp_path / 'searched'}"]):
        rc, out, err = run_hpsearch([*command, *flags], tmp_path)
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert "4 CPUs per run, but the search has 2 CPU slot(s)" in err, err
        assert out == ""
    assert not (tmp_path / "served").exists() and not (tmp_path / "searched").exists()
