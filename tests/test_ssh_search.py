"""Searches on workstations over SSH (issue 22, item 3), end to end through ``python -m
hpsearch --hosts ...`` against real sshd daemons (scripts/ssh/start.sh: one per loopback
address, 127.0.0.2-4, reached as gpu1..gpu3 through the ssh configuration it writes) and the
real OpenSSH client.

The tests of a run's contract (a host that dies, a driver killed and resumed, a timeout, a
run killed on its host, cancel) run twice: with runs started fresh, and ``preloaded`` (the
gated sim is a script: ``--preload`` forks its runs from a zygote on each host,
:mod:`hpsearch.backends.ssh.zygotes`), which must keep the same contract.

Fakes, because no GPU can run here: each host's sshd gives its sessions (``SetEnv``) a PATH
whose ``nvidia-smi`` is ``tests/fakes/nvidia-smi`` (the real tool's CSV) and a fake GPU state
of its own (two GPUs of 16384 MiB per host); GPU runs are ``tests/fakes/fake_gpu_sim.py``,
which takes memory on the GPUs its ``CUDA_VISIBLE_DEVICES`` lists (and fails with a CUDA
out-of-memory line when they are full). Everything else is real: ssh, sshd, the detached
wrappers, the shared run directories, the driver.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, pid_alive, wait_for  # all test hosts are this machine
from ssh_fixture import STATE, PrivateHost, SshHosts, ssh_hosts  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("ssh_hosts")
FAKES = REPO / "tests" / "fakes"
#: the hosts the fixture started
HOSTS = SshHosts(STATE / "ssh_config")

GPU_GRID = '''grid = {{"i": list(range({count})), "mib": [6000], "seconds": [0.4]}}
conditions = []
_SCRIPT_NAME = "fake_gpu_sim.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = ["gpu_mib", "finished"]
'''

#: a sim that waits while ``<gates>/gate-<x>`` exists (at most 300 s), logging its start and
#: end to ``<gates>/log.jsonl`` with its pid and host (the ``HPSEARCH_SSH_TEST_HOST`` each
#: test host's sshd sets)
GATED_SIM = '''
import json, os, socket, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
gates = {gates!r}
def log(event):
    with open(os.path.join(gates, "log.jsonl"), "a") as f:
        f.write(json.dumps({{"ev": event, "x": args["x"], "pid": os.getpid(),
                             "host": os.environ.get("HPSEARCH_SSH_TEST_HOST", ""),
                             "t": time.time()}}) + "\\n")
log("start")
give_up = time.time() + 300
while os.path.exists(os.path.join(gates, "gate-" + args["x"])) and time.time() < give_up:
    time.sleep(0.05)
os.makedirs(args["out_dir"], exist_ok=True)
with open(os.path.join(args["out_dir"], "perf.txt"), "w") as f:
    f.write(f"acc {{args['x']}}\\nfinished 1\\n")
log("end")
'''

GATED_GRID = '''grid = {{"x": {xs!r}}}
conditions = []
_SCRIPT_NAME = "sim.py"
_SUMMARY_FILENAME = "perf.txt"
_SUMMARY_KEYWORDS = ["acc", "finished"]
_PERFORMANCE_KEY = "acc"
'''


def hpsearch(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpsearch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def results(out_dir: Path) -> list[dict[str, str]]:
    with open(out_dir / "search_results.csv", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def gated_search(tmp_path: Path, xs: list[int]) -> tuple[Path, Path]:
    """The gated sim and its grid under ``tmp_path``; every run's gate closed. Returns the
    sim's folder and the gates' folder."""
    gates = tmp_path / "gates"
    gates.mkdir()
    for x in xs:
        (gates / f"gate-{x}").touch()
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "sim.py").write_text(GATED_SIM.format(gates=str(gates)))
    (proj / "hpconf.py").write_text(GATED_GRID.format(xs=xs))
    return proj, gates


def sim_log(gates: Path) -> list[dict]:
    path = gates / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def journaled_jobs(out_dir: Path) -> int:
    """How many jobs the journal's ``submit`` events name (the driver flushes its journal at
    least once a second)."""
    path = out_dir / "journal.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return sum(len(event.get("jobs") or {}) for line in lines if line.endswith("}")
               and (event := json.loads(line)).get("ev") == "submit")


#: the contract tests' two ways of starting a run (module docstring)
PRELOAD = pytest.mark.parametrize("preload", [[], ["--preload"]], ids=["fresh", "preloaded"])


def check_preloaded(out_dir: Path, preload: list[str]) -> None:
    """Every run that started was forked from its host's zygote with ``--preload``, none
    without (``run.json``'s ``preloaded``)."""
    records = [json.loads(p.read_text()) for p in out_dir.glob("runs/*/run.json")
               if (p.parent / "started_at").exists()]
    assert records and {bool(r.get("preloaded")) for r in records} == {bool(preload)}, records


def zygotes_in(folder: Path) -> list[int]:
    """The zygote processes (on any test host: all are this machine) whose working
    directory is ``folder``: a session's leader whose command line is the zygote's and that
    is no forked run's wrapper (which keeps that command line, named ``hpsearch-run``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if b"hpsearch.runs.zygote" not in cmdline or \
                    os.path.realpath(entry / "cwd") != os.path.realpath(folder):
                continue
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
            if stat[0] != "Z" and int(stat[3]) == int(entry.name) and comm != "hpsearch-run":
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def started_runs(out_dir: Path) -> dict[str, str]:
    """``{run_id: host}`` of the runs whose wrapper wrote ``started_at``."""
    found = {}
    for started in (out_dir / "runs").glob("*/started_at"):
        fields = dict(line.partition("=")[::2] for line in started.read_text().splitlines())
        if "host" in fields:
            found[started.parent.name] = fields["host"]
    return found


@PRELOAD
def test_a_30_run_search_uses_every_host_and_gpu_within_limits(tmp_path, preload):
    """30 GPU runs over gpu1..gpu3 (two fake GPUs and 4 slots each), at most 2 runs per GPU
    (``--max_num_jobs_per_gpu=2``): all finish (none ran out of GPU memory, so no GPU held
    more than it could), every host and every GPU of each took runs, and no GPU ever held
    more than 2 runs at once (the runs' started_at/exit_code times). Preloaded, each run's
    ``CUDA_VISIBLE_DEVICES`` reaches its fork as it reaches a fresh process."""
    (tmp_path / "grid.py").write_text(GPU_GRID.format(count=30))
    hosts = tmp_path / "hosts.yaml"  # 4 slots each: the GPUs' limits, not the slots, bind
    hosts.write_text("hosts:\n" + "".join(f"  {h}: {{slots: 4}}\n" for h in HOSTS.names))
    out = tmp_path / "out"
    done = hpsearch([f"--grid_module={tmp_path / 'grid.py'}", f"--run_cwd={FAKES}",
                     f"--out_dir={out}", f"--hosts_file={hosts}", "--sim_startup_time=0",
                     "--allowed_load=1", "--allowed_memory=0.8", "--max_num_jobs_per_gpu=2",
                     *preload], REPO, HOSTS.env())
    assert done.returncode == 0, done.stderr
    check_preloaded(out, preload)
    rows = results(out)
    assert len(rows) == 30 and {r["status"] for r in rows} == {"finished"}, rows
    assert {(r["job_id"].split(":")[0], r["gpu"]) for r in rows} == {
        (h, g) for h in HOSTS.names for g in ("0", "1")}
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in rows:
        run_dir = Path(row["run_dir"])
        spans.setdefault((row["job_id"].split(":")[0], row["gpu"]), []).append(
            ((run_dir / "started_at").stat().st_mtime, (run_dir / "exit_code").stat().st_mtime))
    most = {where: max(sum(1 for s, e in intervals if s <= start < e)
                       for start, _end in intervals) for where, intervals in spans.items()}
    assert max(most.values()) == 2, most  # the limit was reached, never passed


def test_a_gpu_takes_its_next_run_once_the_host_shows_the_first_one_s_memory(tmp_path):
    """``--sim_startup_time=3600``: a GPU that got a run takes no other until that run's
    memory shows in the host's ``nvidia-smi`` (its process found in the run's session through
    the probe's process list), or it ends. Four runs of 10 s on gpu1's two GPUs, two per GPU:
    all four run at once, so each GPU's gate lifted on the memory seen, not at the end."""
    (tmp_path / "grid.py").write_text(GPU_GRID.format(count=4).replace("[0.4]", "[10]"))
    (tmp_path / "hosts.yaml").write_text("hosts:\n  gpu1: {slots: 4}\n")
    out = tmp_path / "out"
    done = hpsearch([f"--grid_module={tmp_path / 'grid.py'}", f"--run_cwd={FAKES}",
                     f"--out_dir={out}", f"--hosts_file={tmp_path / 'hosts.yaml'}",
                     "--sim_startup_time=3600",
                     "--allowed_load=1", "--allowed_memory=0.8", "--max_num_jobs_per_gpu=2"],
                    REPO, HOSTS.env())
    assert done.returncode == 0, done.stderr
    spans = [((Path(r["run_dir"]) / "started_at").stat().st_mtime,
              (Path(r["run_dir"]) / "exit_code").stat().st_mtime) for r in results(out)]
    assert max(s for s, _ in spans) < min(e for _, e in spans), spans


def test_a_hosts_file_names_the_address_user_and_gpus_of_a_host(tmp_path):
    """``lab1: {address: 127.0.0.3, user: root, gpus: [1]}``: ssh reaches the host at that
    address as that user (``lab1`` itself resolves nowhere), its runs use GPU 1 only, and
    the results and messages name the host ``lab1``."""
    (tmp_path / "grid.py").write_text(GPU_GRID.format(count=3))
    (tmp_path / "hosts.yaml").write_text(
        "hosts:\n  lab1: {address: 127.0.0.3, user: root, gpus: [1], slots: 2}\n")
    out = tmp_path / "out"
    done = hpsearch([f"--grid_module={tmp_path / 'grid.py'}", f"--run_cwd={FAKES}",
                     f"--out_dir={out}", f"--hosts_file={tmp_path / 'hosts.yaml'}",
                     "--sim_startup_time=0", "--allowed_load=1", "--allowed_memory=0.8",
                     "--max_num_jobs_per_gpu=2"], REPO, HOSTS.env())
    assert done.returncode == 0, done.stderr
    rows = results(out)
    assert {(r["job_id"].split(":")[0], r["gpu"], r["status"]) for r in rows} == {
        ("lab1", "1", "finished")}, rows
    assert "lab1 (GPUs 1;" in done.stderr, done.stderr


@PRELOAD
def test_a_killed_sshd_s_runs_rerun_elsewhere_once_uncharged_and_the_host_comes_back(
        tmp_path, preload):
    """Hosts gpu9 (a private sshd of this test, 2 slots) and gpu1 (1 slot), CPU runs held by
    gates. Once gpu9 runs two of them, its sshd and its connections are killed: after
    ``--host_grace`` the driver gives its two runs up and, when gpu1 has a free slot, runs
    one of them again there (elsewhere, while gpu9 does not answer). Then gpu9's sshd comes
    back: the driver kills what was left of its given-up runs there and starts runs on it
    again. In the end every run finished once (attempt 1: the reruns were not charged), and
    each given-up run started exactly twice (its first start and one rerun)."""
    host = PrivateHost(tmp_path, "gpu9", "127.0.0.9")
    host.start()
    xs = list(range(1, 7))
    proj, gates = gated_search(tmp_path, xs)
    (tmp_path / "hosts.yaml").write_text("hosts:\n  gpu9: {slots: 2}\n  gpu1: {slots: 1}\n")
    out = tmp_path / "out"
    stderr = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115 (read while it runs)
    driver = subprocess.Popen(
        [sys.executable, "-m", "hpsearch", "--grid_module=hpconf", f"--run_cwd={proj}",
         f"--out_dir={out}", f"--hosts_file={tmp_path / 'hosts.yaml'}", "--visible_gpus=-1",
         "--host_grace=2", "--deterministic_search", *preload],
        cwd=tmp_path, env=HOSTS.env(host.config), stdout=subprocess.DEVNULL, stderr=stderr,
        stdin=subprocess.DEVNULL, text=True)
    try:
        wait_for(lambda: sorted(started_runs(out).values()) == ["gpu1", "gpu9", "gpu9"]
                 and len(sim_log(gates)) == 3, 60, "two runs on gpu9 and one on gpu1")
        on_gpu9 = {r for r, h in started_runs(out).items() if h == "gpu9"}
        first = {e["x"]: e for e in sim_log(gates)}
        host.kill()
        wait_for(lambda: "host gpu9 has not answered" in (tmp_path / "stderr.txt").read_text(),
                 60, "the driver giving gpu9's runs up")
        # gpu1's run ends: one of the given-up runs runs again there
        gpu1_x = next(x for x, e in first.items() if e["host"] == "gpu1")
        (gates / f"gate-{gpu1_x}").unlink()
        wait_for(lambda: any(started_runs(out).get(r) == "gpu1" for r in on_gpu9), 60,
                 "a given-up run starting again on gpu1")
        host.start()
        wait_for(lambda: sum(1 for e in sim_log(gates) if e["ev"] == "start"
                             and e["host"] == "gpu9" and e["x"] not in first) >= 1,
                 120, "gpu9 taking runs again")
        for gate in gates.glob("gate-*"):
            gate.unlink()
        assert driver.wait(timeout=180) == 0, (tmp_path / "stderr.txt").read_text()
    finally:
        if driver.poll() is None:
            driver.kill()
        for gate in gates.glob("gate-*"):
            gate.unlink()
        if host.sshd is not None:
            host.kill()
    rows = results(out)
    assert sorted(int(r["x"]) for r in rows) == xs
    assert {r["status"] for r in rows} == {"finished"} and {r["attempts"] for r in rows} == {"1"}
    starts: dict[str, int] = {}
    for event in sim_log(gates):
        if event["ev"] == "start":
            starts[event["x"]] = starts.get(event["x"], 0) + 1
    given_up = {e["x"] for e in first.values() if e["host"] == "gpu9"}
    assert len(given_up) == 2 and len(on_gpu9) == 2
    assert starts == {str(x): 2 if str(x) in given_up else 1 for x in xs}, starts
    # what was left of the given-up runs on gpu9 was killed there: they never ended
    ends = {e["pid"] for e in sim_log(gates) if e["ev"] == "end"}
    assert not {first[x]["pid"] for x in given_up} & ends
    check_preloaded(out, preload)


@PRELOAD
def test_a_killed_driver_s_command_resumes_and_runs_nothing_twice(tmp_path, preload):
    """kill -9 of the driver while 3 runs go on gpu1..gpu3; two of them end while no driver
    watches; the same command then reattaches to the one still going (and records the two
    that ended) and runs the rest: every run finished, each started exactly once. Preloaded,
    the hosts' zygotes end with the driver (no orphans), while their runs go on."""
    xs = list(range(1, 7))
    proj, gates = gated_search(tmp_path, xs)
    out = tmp_path / "out"
    args = ["--grid_module=hpconf", f"--run_cwd={proj}", f"--out_dir={out}",
            "--hosts=gpu1,gpu2,gpu3", "--visible_gpus=-1", "--deterministic_search", *preload]
    hosts_file = tmp_path / "hosts.yaml"
    hosts_file.write_text("hosts:\n" + "".join(f"  {h}: {{slots: 1}}\n"
                                               for h in HOSTS.names))
    args[3] = f"--hosts_file={hosts_file}"
    driver = subprocess.Popen([sys.executable, "-m", "hpsearch", *args], cwd=tmp_path,
                              env=HOSTS.env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(sim_log(gates)) == 3 and journaled_jobs(out) == 3, 60,
                 "three runs going, journaled")
        assert bool(zygotes_in(proj)) == bool(preload)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        wait_for(lambda: not zygotes_in(proj), 30, "the hosts' zygotes ending with the driver")
        going = [e["x"] for e in sim_log(gates)]
        assert all(pid_alive(e["pid"]) for e in sim_log(gates)), "a run ended with its zygote"
        for x in going[:2]:
            (gates / f"gate-{x}").unlink()
        wait_for(lambda: sum(1 for e in sim_log(gates) if e["ev"] == "end") == 2, 60,
                 "two runs ending with no driver")
        (gates / f"gate-{going[2]}").unlink(missing_ok=True)
        for gate in gates.glob("gate-*"):
            gate.unlink()
        done = hpsearch(args, tmp_path, HOSTS.env())
        assert done.returncode == 0, done.stderr
    finally:
        if driver.poll() is None:
            driver.kill()
        for gate in gates.glob("gate-*"):
            gate.unlink()
    rows = results(out)
    assert sorted(int(r["x"]) for r in rows) == xs and {r["status"] for r in rows} == {
        "finished"}
    starts = [e["x"] for e in sim_log(gates) if e["ev"] == "start"]
    assert sorted(starts) == sorted(map(str, xs)), starts
    check_preloaded(out, preload)


def test_a_host_s_python_runs_its_runs(tmp_path):
    """A hosts file's ``python`` replaces the search's interpreter in that host's runs (the
    other host keeps the search's): gpu1's runs go through a wrapper script that notes each
    run, gpu2's do not."""
    proj, gates = gated_search(tmp_path, [1, 2, 3, 4])
    for gate in gates.glob("gate-*"):
        gate.unlink()
    noted = tmp_path / "noted"
    python = tmp_path / "python-gpu1"
    python.write_text(f'#!/bin/sh\necho "$HPSEARCH_RUN_ID" >> {noted}\n'
                      f'exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    (tmp_path / "hosts.yaml").write_text(
        f"hosts:\n  gpu1: {{slots: 1, python: {python}}}\n  gpu2: {{slots: 1}}\n")
    out = tmp_path / "out"
    done = hpsearch(["--grid_module=hpconf", f"--run_cwd={proj}", f"--out_dir={out}",
                     f"--hosts_file={tmp_path / 'hosts.yaml'}", "--visible_gpus=-1"], tmp_path,
                    HOSTS.env())
    assert done.returncode == 0, done.stderr
    rows = results(out)
    on_gpu1 = {r["run_id"] for r in rows if r["job_id"].startswith("gpu1:")}
    assert on_gpu1 and len(on_gpu1) < 4
    assert set(noted.read_text().split()) == on_gpu1


@PRELOAD
def test_a_run_past_its_timeout_is_stopped_on_its_host(tmp_path, preload):
    """``--timeout=2``: the run whose gate stays closed is stopped on its host (SIGTERM to its
    process group there, through ssh): it fails with the timeout as its reason and its sim is
    gone; the other runs finish."""
    proj, gates = gated_search(tmp_path, [1, 2, 3])
    for x in (2, 3):
        (gates / f"gate-{x}").unlink()
    out = tmp_path / "out"
    done = hpsearch(["--grid_module=hpconf", f"--run_cwd={proj}", f"--out_dir={out}",
                     "--hosts=gpu1,gpu2", "--visible_gpus=-1", "--timeout=2", *preload],
                    tmp_path, HOSTS.env())
    (gates / "gate-1").unlink(missing_ok=True)
    assert done.returncode == 1 and "1 run(s) failed" in done.stderr, done.stderr
    rows = {r["x"]: r for r in results(out)}
    assert rows["1"]["status"] == "failed" and "timeout" in rows["1"]["failure_reason"], rows
    assert rows["2"]["status"] == rows["3"]["status"] == "finished"
    sim = next(e["pid"] for e in sim_log(gates) if e["x"] == "1")
    wait_for(lambda: not pid_alive(sim), 30, "the stopped sim gone")
    check_preloaded(out, preload)


@PRELOAD
def test_a_run_killed_on_its_host_without_an_exit_code_ends_by_the_probe(tmp_path, preload):
    """A run's whole process group killed on its host (SIGKILL: the wrapper writes no exit
    code): the next probes find no process of its session, so it ends, failed, and the
    search goes on."""
    proj, gates = gated_search(tmp_path, [1, 2])
    (gates / "gate-2").unlink()
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "hpsearch", "--grid_module=hpconf", f"--run_cwd={proj}",
         f"--out_dir={out}", "--hosts=gpu1", "--visible_gpus=-1", *preload], cwd=tmp_path,
        env=HOSTS.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(e["x"] == "1" for e in sim_log(gates)), 60, "run 1 going")
        sim = next(e["pid"] for e in sim_log(gates) if e["x"] == "1")
        os.killpg(os.getpgid(sim), signal.SIGKILL)
        _out, err = driver.communicate(timeout=120)
        assert driver.returncode == 1 and "1 run(s) failed" in err, err  # the search went on
    finally:
        if driver.poll() is None:
            driver.kill()
        (gates / "gate-1").unlink(missing_ok=True)
    rows = {r["x"]: r for r in results(out)}
    assert rows["1"]["status"] == "failed" and "without an exit code" in rows["1"][
        "failure_reason"], rows
    assert rows["2"]["status"] == "finished"
    check_preloaded(out, preload)


@PRELOAD
def test_cancel_stops_the_runs_on_their_hosts(tmp_path, preload):
    """``hpsearch cancel`` of a search whose driver was killed: the runs still going on the
    hosts are stopped there (SIGTERM to their groups over ssh) and journaled cancelled."""
    proj, gates = gated_search(tmp_path, [1, 2])
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "hpsearch", "--grid_module=hpconf", f"--run_cwd={proj}",
         f"--out_dir={out}", "--hosts=gpu1,gpu2", "--visible_gpus=-1", *preload],
        cwd=tmp_path, env=HOSTS.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(sim_log(gates)) == 2 and journaled_jobs(out) == 2, 60,
                 "two runs going, journaled")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        done = hpsearch(["cancel", str(out)], tmp_path, HOSTS.env())
        assert done.returncode == 0, done.stderr
        assert "cancelled 2 run(s)" in done.stdout, done.stdout
        for event in sim_log(gates):
            wait_for(lambda pid=event["pid"]: not pid_alive(pid), 30, "a cancelled sim gone")
        check_preloaded(out, preload)
    finally:
        if driver.poll() is None:
            driver.kill()
        for gate in gates.glob("gate-*"):
            gate.unlink()


def test_a_host_that_does_not_see_the_search_directory_is_refused_in_one_line(tmp_path):
    """gpu4's sshd has a /tmp of its own (an empty tmpfs in its mount namespace), so the
    token file written next to a search directory under /tmp cannot be read there: one line
    naming gpu4, exit 2, nothing run or written."""
    proj, _gates = gated_search(tmp_path, [1])
    assert str(tmp_path).startswith("/tmp/")
    out = tmp_path / "out"
    done = hpsearch(["--grid_module=hpconf", f"--run_cwd={proj}", f"--out_dir={out}",
                     f"--hosts=gpu1,{HOSTS.blind}", "--visible_gpus=-1"], tmp_path,
                    HOSTS.env())
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "gpu4" in lines[0] and "gpu1" not in lines[0], done.stderr
    assert "do not see the search directory" in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".hpsearch-ssh-check-*"))


@pytest.mark.parametrize("flags, words", [
    (["--hosts=gpu1,nosuchhost"], "nosuchhost (ssh: Could not resolve hostname"),
    (["--hosts=gpu1,deadhost"], "deadhost ("),
    (["--hosts=gpu1,gpu2", "--gpus_per_run=3"], "resources nothing here can run: 3 GPU(s)"),
    (["--hosts=gpu1", "--nodes_per_run=2"], "runs of 2 nodes cannot run on SSH hosts"),
    (["--hosts_file=HOSTS", ], "host gpu1 has an unknown key 'gpu'"),
    (["--hosts=gpu1,,gpu2"], "--hosts='gpu1,,gpu2' is not a list of distinct host names"),
    (["--hosts=gpu1", "--hosts_file=HOSTS"], "give one of them"),
], ids=["unknown-host", "unreachable-host", "too-many-gpus", "nodes", "hosts-file-key",
        "empty-name", "both"])
def test_bad_ssh_input_is_one_line_before_anything_runs(tmp_path, flags, words):
    """Each bad input: exit 2, one line naming it, no run started, no search directory.
    ``deadhost`` is a name the configuration maps to 127.0.0.77, where no sshd listens."""
    proj, gates = gated_search(tmp_path, [1])
    config = tmp_path / "ssh_config"
    config.write_text(f"Include {HOSTS.config}\n\nHost deadhost\n    HostName 127.0.0.77\n")
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text("hosts:\n  gpu1: {gpu: [0]}\n")
    out = tmp_path / "out"
    done = hpsearch(["--grid_module=hpconf", f"--run_cwd={proj}", f"--out_dir={out}",
                     *[f.replace("HOSTS", str(hosts)) for f in flags]], tmp_path,
                    HOSTS.env(config), timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert words in lines[0], lines[0]
    assert not out.exists() and not sim_log(gates)


def test_status_shows_the_hosts_and_what_each_runs(tmp_path):
    """While a search runs on gpu1 and gpu2 (one slot each), ``hpsearch status`` lists each
    host, its state and the runs it holds."""
    proj, gates = gated_search(tmp_path, [1, 2, 3])
    out = tmp_path / "out"
    (tmp_path / "hosts.yaml").write_text("hosts:\n  gpu1: {slots: 1}\n  gpu2: {slots: 1}\n")
    driver = subprocess.Popen(
        [sys.executable, "-m", "hpsearch", "--grid_module=hpconf", f"--run_cwd={proj}",
         f"--out_dir={out}", f"--hosts_file={tmp_path / 'hosts.yaml'}", "--visible_gpus=-1"],
        cwd=tmp_path, env=HOSTS.env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(started_runs(out)) == 2, 60, "two runs going")
        running = started_runs(out)

        def shown() -> str:
            return hpsearch(["status", str(out)], tmp_path, HOSTS.env()).stdout

        wait_for(lambda: all(r in shown() for r in running), 30, "status naming the runs")
        text = shown()
        for run_id, name in running.items():
            line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"host {name}"))
            assert "up" in line and run_id in line, text
        for gate in gates.glob("gate-*"):
            gate.unlink()
        assert driver.wait(timeout=120) == 0
    finally:
        if driver.poll() is None:
            driver.kill()
        for gate in gates.glob("gate-*"):
            gate.unlink()


def test_the_ssh_hosts_fixture_gives_each_host_its_own_gpus():
    """The fake nvidia-smi each host's sessions find reports that host's GPU state."""
    for name in HOSTS.names:
        done = subprocess.run(
            ["ssh", "-F", str(HOSTS.config), "-o", "BatchMode=yes", name,
             "echo $FAKE_GPU_STATE; nvidia-smi --query-gpu=index --format=csv,noheader"],
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(HOSTS.gpu_state(name)), "0", "1"]

