"""``hpsearch serve`` end to end: a real service on a free localhost port, real HTTP, real
worker processes (``sims/served/worker.py``); the journal, the run directories, ``status``
and the results CSV are read as a user would."""

from __future__ import annotations

import csv
import json
import signal

import pytest
import serve_fixture
from conftest import run_hpsearch, wait_for
from serve_fixture import (
    Service,
    ended,
    journal,
    worker,
    write_yaml,
)

from hpsearch.client import ClientError

services = serve_fixture.services  # the fixture, under its name for pytest

RANDOM = """
algorithm: random
num_trials: {n}
seed: 5
parameters:
  x: {{method: uniform, low: -2.0, high: 2.0}}
  y: {{method: uniform, low: -1.0, high: 3.0}}
  optimizer: [sgd, momentum]
"""


HYPERBAND = """
algorithm: hyperband
num_trials: 9
seed: 2
budget: {parameter: epochs, min: 1, max: 9, eta: 3}
parameters:
  x: {method: uniform, low: -2.0, high: 2.0}
"""


def serve(tmp_path, services, *args: str, n: int = 30) -> Service:
    search = tmp_path / "search.yaml"
    if not search.exists():
        write_yaml(search, RANDOM.format(n=n))
    service = Service([f"--search_file={search}", f"--out_dir={tmp_path / 'out'}", *args],
                      tmp_path).start()
    services.append(service)
    return service


def results(out_dir):
    with open(out_dir / "search_results.csv", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def test_three_workers_do_the_whole_search_and_every_tool_reads_it(tmp_path, services):
    service = serve(tmp_path, services, "--num_points_per_generation=4", n=30)
    log = tmp_path / "got.jsonl"
    workers = [worker(service, "--log", str(log), "--fail-every", "7", "--sleep", "0.05",
                      cwd=tmp_path) for _ in range(3)]
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    got = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(g["id"] for g in got) == list(range(30))  # each point to one worker once
    status = service.client().status(1)
    assert status["done"] and status["max_points_reached"]
    failed = sum(1 for g in got if g["loss"] is None)
    assert status["points"] == {"new": 0, "running": 0, "finished": 30 - failed,
                                "failed": failed}
    best = min((g for g in got if g["loss"] is not None), key=lambda g: g["loss"])
    assert status["best"]["id"] == best["id"] and status["best"]["loss"] == best["loss"]
    out = tmp_path / "out"
    assert len(ended(out)) == 30 and {r.attempts for r in ended(out)} == {1}
    rows = results(out)
    assert len(rows) == 30
    assert sum(r["status"] == "failed" for r in rows) == failed
    assert {r["failure_reason"] for r in rows if r["status"] == "failed"} == {
        "reported: diverged (test)"}
    assert all(r["job_id"].startswith("lease:") for r in rows)
    for row in rows:  # the files a job wrapper writes; no command.sh: none ran here
        names = {p.name for p in (out / "runs" / row["run_id"]).iterdir()}
        assert {"run.json", "started_at", "exit_code"} <= names and "command.sh" not in names
    by_id = {g["id"]: g["loss"] for g in got}
    for row in rows:
        if row["status"] == "finished":
            trial = int(row["run_id"].split("-")[0])
            assert float(row["loss"]) == by_id[trial]
    finished = service.client().get_points(1, status="finished")
    assert len(finished) == 30 - failed and all(p["loss"] is not None for p in finished)
    rc, text, err = run_hpsearch(["status", str(out)], tmp_path)
    assert rc == 0 and f"{30 - failed} finished, {failed} failed" in text, err
    rc, text, err = run_hpsearch(["collect", str(out)], tmp_path)
    assert rc == 0 and "30 runs" in text, err
    assert service.stop() == 128 + signal.SIGTERM
    assert not (out / ".hpsearch.lock").exists()


def test_a_worker_that_dies_holding_a_lease_loses_nothing(tmp_path, services):
    service = serve(tmp_path, services, "--lease=1", "--num_points_per_generation=2", n=4)
    dead = worker(service, "--die-holding", cwd=tmp_path)
    said, _ = dead.communicate(timeout=60)
    lost = int(said.split("dying with point ")[1])
    c = service.client(worker="slow")
    late = c.get_points(1, status="new", limit=1)[0]  # leased by "slow", never renewed
    wait_for(lambda: any(p["id"] == lost for p in c.get_points(1, status="new")), 30,
             "the dead worker's point to be new again")
    # "slow" reports after its lease expired: taken, as nobody else reported it
    wait_for(lambda: late["id"] in [p["id"] for p in c.get_points(1, status="new")], 30,
             "the slow worker's lease to expire")
    assert c.update_point(1, late["id"], 0.5)["status"] == "finished"
    # read before the search ends: a finished search's journal is compacted
    def lost_events():
        return [e for e in journal(tmp_path / "out") if e["ev"] == "lost"]
    wait_for(lambda: len(lost_events()) >= 1, 30, "the expired lease to be journaled")
    assert all("lease expired" in e["reason"] for e in lost_events())
    good = worker(service, cwd=tmp_path)
    out, err = good.communicate(timeout=60)
    assert good.returncode == 0, err
    assert c.status(1)["points"]["finished"] == 4
    runs = ended(tmp_path / "out")
    assert len(runs) == 4 and {r.attempts for r in runs} == {1}  # lost leases not counted


def test_kill_9_mid_workflow_and_restart_loses_nothing_and_hands_out_nothing_twice(
        tmp_path, services):
    service = serve(tmp_path, services, "--num_points_per_generation=3", n=12)
    c = service.client(worker="w1")
    leased = c.get_points(1, status="new", limit=3)
    c.update_point(1, leased[0]["id"], 1.5)  # reported, maybe not yet journaled
    service.kill()
    again = serve(tmp_path, services, "--num_points_per_generation=3", n=12)
    c = again.client(worker="w2")
    wait_for(lambda: c.status(1)["points"]["finished"] == 1, 30, "the report to be adopted")
    running = {p["id"] for p in c.get_points(1, status="running")}
    assert running == {leased[1]["id"], leased[2]["id"]}  # still leased to w1
    new = {p["id"] for p in c.get_points(1) if p["status"] == "new"}
    assert not new & {p["id"] for p in leased}
    for p in leased[1:]:
        assert c.update_point(1, p["id"], 2.0)["status"] == "finished"
    with pytest.raises(ClientError) as twice:
        c.update_point(1, leased[0]["id"], 3.0)
    assert twice.value.status == 409
    done = worker(again, "--log", str(tmp_path / "rest.jsonl"), cwd=tmp_path)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    rest = [json.loads(line)["id"] for line in (tmp_path / "rest.jsonl").read_text().splitlines()]
    assert sorted(rest + [p["id"] for p in leased]) == list(range(12))  # none twice
    final = ended(tmp_path / "out")
    assert len(final) == 12 and {r.attempts for r in final} == {1}  # each ran once
    assert again.stop() == 128 + signal.SIGTERM


def test_a_point_whose_end_was_journaled_before_a_kill_9_is_still_reported_after_it(
        tmp_path, services):
    """A report the driver journaled before the service was killed: after the restart the
    point is ``finished`` with its loss (the journal's verdict), never ``new`` again, and
    a second report is refused. (The test above covers the report not yet journaled.)"""
    service = serve(tmp_path, services, "--num_points_per_generation=3", n=6)
    c = service.client(worker="w1")
    leased = c.get_points(1, status="new", limit=1)
    c.update_point(1, leased[0]["id"], 1.5)
    wait_for(lambda: any(e.get("ev") == "end" for e in journal(tmp_path / "out")), 30,
             "the report journaled")
    service.kill()
    again = serve(tmp_path, services, "--num_points_per_generation=3", n=6)
    c = again.client(worker="w2")
    wait_for(lambda: c.status(1)["points"]["new"] == 3, 30, "the restarted pool")
    point = next(p for p in c.get_points(1) if p["id"] == leased[0]["id"])
    assert point["status"] == "finished" and point["loss"] == 1.5, point
    assert c.status(1)["points"]["finished"] == 1
    with pytest.raises(ClientError) as twice:
        c.update_point(1, leased[0]["id"], 3.0)
    assert twice.value.status == 409


def test_requests_made_over_http_are_searches_of_their_own_and_survive_a_restart(
        tmp_path, services):
    service = serve(tmp_path, services, n=5)
    c = service.client()
    rid = c.create_request({"parameters": {"lr": {"method": "loguniform", "low": 1e-4,
                                                  "high": 0.1}, "layers": [1, 2, 3]},
                            "algorithm": "tpe", "seed": 1}, max_points=6,
                           num_points_per_generation=2)
    assert rid == 2
    wait_for(lambda: c.status(rid)["points"]["new"] == 2, 30, "request 2's first points")
    points = c.get_points(rid, status="new", limit=2)
    assert [p["id"] for p in points] == [0, 1] and set(points[0]["params"]) == {"lr", "layers"}
    c.update_point(rid, 0, 0.3)
    folder = tmp_path / "out" / "requests" / "2"
    assert (folder / "request.json").is_file() and (folder / "journal.jsonl").is_file()
    assert service.stop() == 128 + signal.SIGTERM
    again = serve(tmp_path, services, n=5)
    c = again.client()
    wait_for(lambda: c.status(rid)["points"]["finished"] == 1, 30, "request 2 to come back")
    assert [p["id"] for p in c.get_points(rid, status="running")] == [1]
    assert c.status(rid)["max_points"] == 6 and c.status(rid)["algorithm"] == "tpe"
    assert [r["request_id"] for r in json.loads(_get(again, "/requests"))] == [1, 2]
    with pytest.raises(ClientError) as bad:
        c.create_request({"parameters": {"lr": [1]}, "colour": "red"})
    assert bad.value.status == 400 and "unknown setting 'colour'" in bad.value.message
    with pytest.raises(ClientError) as bad:
        c.create_request({"parameters": {"lr": {"method": "uniform", "low": 0, "high": 1}},
                          "algorithm": "random"})
    assert bad.value.status == 400 and "needs max_points" in bad.value.message
    assert not (tmp_path / "out" / "requests" / "3").exists()


def _get(service: Service, path: str) -> str:
    import urllib.request

    request = urllib.request.Request(service.url + path, headers=service.headers())
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read().decode()


def test_with_backend_flags_the_service_runs_points_itself_and_takes_reports_too(
        tmp_path, services):
    sim = tmp_path / "sim"
    sim.mkdir()
    (sim / "sim.py").write_text(
        "import sys, os, time\n"
        "args = dict(a[2:].split('=', 1) for a in sys.argv[1:])\n"
        "time.sleep(0.2)\n"
        "os.makedirs(args['out_dir'], exist_ok=True)\n"
        "open(os.path.join(args['out_dir'], 'perf.txt'), 'w').write("
        "f\"loss {float(args['x']) ** 2}\\nfinished 1\\n\")\n")
    write_yaml(tmp_path / "search.yaml", "script: sim.py\nsummary_file: perf.txt\n"
               "metrics: [loss]\nalgorithm: random\nnum_trials: 10\n"
               "parameters:\n  x: {method: uniform, low: -1, high: 1}\n")
    service = serve(tmp_path, services, f"--run_cwd={sim}", "--num_jobs=1",
                    "--visible_gpus=-1", "--num_points_per_generation=2")
    helper = worker(service, "--log", str(tmp_path / "w.jsonl"), "--sleep", "0.05",
                    cwd=tmp_path)
    out, err = helper.communicate(timeout=120)
    assert helper.returncode == 0, err
    by_worker = len((tmp_path / "w.jsonl").read_text().splitlines())
    rows = results(tmp_path / "out")
    assert len(rows) == 10 and all(r["status"] == "finished" for r in rows)
    local = [r for r in rows if not r["job_id"].startswith("lease:")]
    assert local and by_worker == 10 - len(local)
    for row in local:
        assert float(row["loss"]) == pytest.approx(float(row["x"]) ** 2)
        assert (tmp_path / "out" / "runs" / row["run_id"] / "command.sh").is_file()


def test_stopping_and_refusals_are_one_line(tmp_path, services):
    write_yaml(tmp_path / "search.yaml", RANDOM.format(n=5))
    rc, out, err = run_hpsearch(["serve", f"--search_file={tmp_path / 'search.yaml'}",
                                 f"--out_dir={tmp_path / 'o'}", "--host=0.0.0.0",
                                 "--no_token"], tmp_path)
    assert rc == 2 and err.count("\n") == 1 and "--no_token" in err, err
    assert not (tmp_path / "o").exists()
    service = serve(tmp_path, services, n=5)
    rc, out, err = run_hpsearch(["serve", f"--search_file={tmp_path / 'search.yaml'}",
                                 f"--out_dir={tmp_path / 'out'}", "--port=0"], tmp_path)
    assert rc == 2 and "another hpsearch driver" in err and err.count("\n") == 1, err
    rc, out, err = run_hpsearch(["serve", "--help"], tmp_path)
    assert rc == 0 and "--num_points_per_generation" in out and "--token-file" in out
    assert service.stop(signal.SIGINT) == 130


def test_a_promoted_point_names_the_point_it_continues(tmp_path, services):
    """Hyperband through the real service and client: a point promoted to a larger budget is
    handed out with ``resume_from``, the id of the point it continues and that point's output
    directory (what ``HPSEARCH_RESUME_FROM`` holds for a run the service starts itself), as
    the journal's lineage says; a configuration that starts afresh has null."""
    write_yaml(tmp_path / "search.yaml", HYPERBAND)
    client = serve(tmp_path, services).client()
    leased: dict[int, dict] = {}

    def work() -> bool:
        for point in client.get_points(1, status="new"):
            leased[point["id"]] = point
            client.update_point(1, point["id"],
                                point["params"]["x"] ** 2 / point["params"]["epochs"])
        return client.status(1)["done"]

    wait_for(work, timeout=120, what="the hyperband search to end", poll=0.1)
    out = tmp_path / "out"
    runs = {r.trial: r for r in ended(out)}
    parents = {trial: r.lineage["continues"] for trial, r in runs.items()
               if (r.lineage or {}).get("continues") is not None}
    assert parents and set(leased) == set(runs)
    for trial, point in leased.items():
        parent = parents.get(trial)
        assert point["resume_from"] == (None if parent is None else {
            "id": parent, "out_dir": str(out / "runs" / runs[parent].run_id / "out")}), point
    assert [p["resume_from"] for p in client.get_points(1)] == [
        leased[t]["resume_from"] for t in sorted(leased)]
