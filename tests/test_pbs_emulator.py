"""The PBS emulator (tests/pbs_emulator) behaves as OpenPBS's and Torque's documentation says,
and hpsearch's PBS parsers read what it prints. PBS is not packaged in Debian, so this emulator
is the stand-in for both flavours (see tests/pbs_emulator/README.md for the documentation
followed and what it does not do: no nodes, no scheduling policy, resources other than the
walltime recorded but not enforced)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpsearch.backends.pbs import parse as pp

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = ROOT / "tests" / "pbs_emulator"


@dataclass
class Pbs:
    """The emulator a test runs against: its state folder and the flavour it speaks."""

    state: Path
    flavor: str

    @property
    def flags(self) -> tuple[str, ...]:
        """hpsearch's flags for this PBS."""
        return ("--run_cluster", "--scheduler=pbs", f"--pbs_flavor={self.flavor}",
                "--pbs_ngpus=0")

    def calls(self, tool: str | None = None) -> list[tuple[str, float, list[str]]]:
        """``(tool, epoch, argv)`` of every emulator call (of ``tool`` only when given)."""
        path = self.state / "calls.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            name, when, argv = line.split(" ", 2)
            if tool is None or name == tool:
                out.append((name, float(when), json.loads(argv)))
        return out

    def records(self, *ids: str) -> dict[str, pp.Record]:
        """What ``qstat -f [-F json] -t [-x]`` says of ``ids``, parsed as the backend does."""
        if self.flavor == "openpbs":
            return pp.parse_qstat_json(cmd("qstat", "-f", "-F", "json", "-t", "-x", *ids).stdout)
        return pp.parse_attribute_blocks(cmd("qstat", "-f", "-t", *ids).stdout)


def emulated(state: Path, flavor: str, monkeypatch) -> Pbs:
    """Put the emulator first on PATH, speaking ``flavor``, with its state in ``state``."""
    monkeypatch.setenv("PATH", f"{EMULATOR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PBS_EMULATOR_STATE", str(state))
    monkeypatch.setenv("PBS_EMULATOR_FLAVOR", flavor)
    monkeypatch.setenv("PBS_EMULATOR_KILL_DELAY", "0.5")
    return Pbs(state, flavor)


def kill_leftovers(state: Path) -> None:
    """Kill what the emulator's jobs left running."""
    for path in (state / "jobs").glob("*.state.json"):
        data = json.loads(path.read_text())
        pids = [data["runner_pid"]] + [s["pid"] for s in data["subjobs"].values()]
        for pid in filter(None, pids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture(params=["openpbs", "torque"])
def pbs(request, tmp_path, monkeypatch):
    """PATH with the emulator first, a fresh state dir, one flavour per parameter; leftover
    job processes are killed."""
    yield emulated(tmp_path / "pbs_state", request.param, monkeypatch)
    kill_leftovers(tmp_path / "pbs_state")


@pytest.fixture
def openpbs(tmp_path, monkeypatch):
    """The emulator as OpenPBS only (for the docs' commands, which name no flavour)."""
    yield emulated(tmp_path / "pbs_state", "openpbs", monkeypatch)
    kill_leftovers(tmp_path / "pbs_state")


def cmd(*argv: str, stdin: str | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=30,
                          cwd=cwd)


def wait_over(pbs: Pbs, job_id: str, timeout: float = 20) -> dict[str, pp.Record]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        records = pbs.records(job_id)
        subjobs = {k: r for k, r in records.items() if not k.endswith("[]")}
        if subjobs and all(pp.is_over(pp.job_state(r)) or r["job_state"] in ("X", "F", "C")
                           for r in subjobs.values()):
            return records
        time.sleep(0.1)
    raise AssertionError(f"{job_id} did not end: {pbs.records(job_id)}")


def array_script(pbs: Pbs, tmp_path: Path, body: str, count: int, limit: int = 0,
                 extra: str = "") -> Path:
    """A job script of ``count`` subjobs in the flavour's own spelling."""
    if pbs.flavor == "openpbs":
        head = f"#PBS -J 1-{count}\n" + (f"#PBS -W max_run_subjobs={limit}\n" if limit else "")
    else:
        head = f"#PBS -t 1-{count}" + (f"%{limit}" if limit else "") + "\n"
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/sh\n#PBS -N emu\n{head}#PBS -o {tmp_path}/\n"
                      f"#PBS -e {tmp_path}/\n{extra}"
                      'i="${PBS_ARRAY_INDEX:-$PBS_ARRAYID}"\n' + body)
    return script


def test_array_runs_each_subjob_with_its_index_and_exit_status(pbs, tmp_path):
    script = array_script(pbs, tmp_path, f'echo "$i $PBS_JOBID" >> {tmp_path}/ran\nexit "$i"\n',
                          3, extra="#PBS -l walltime=00:01:00\n")
    done = cmd("qsub", str(script))
    assert done.returncode == 0, done.stderr
    array = pp.parse_qsub_job_id(done.stdout)
    assert array == "1001[].pbsemu"
    records = wait_over(pbs, array)
    assert {k: pp.job_state(r) for k, r in records.items() if k != "1001[]"} == {
        "1001[1]": "exit status 1", "1001[2]": "exit status 2", "1001[3]": "exit status 3"}
    assert sorted((tmp_path / "ran").read_text().split("\n"))[1:] == [
        f"{i} 1001[{i}].pbsemu" for i in (1, 2, 3)]
    assert records["1001[1]"]["resources_used.walltime"] == "00:00:00"
    assert pp.usage(records["1001[1]"]) is None  # under a second: the run's own measure


def test_slot_limit_holds_and_qalter_raises_it(pbs, tmp_path):
    body = f'echo "start $(date +%s.%N)" >> {tmp_path}/log.$i\nsleep 1\n' \
           f'echo "end $(date +%s.%N)" >> {tmp_path}/log.$i\n'
    array = pp.parse_qsub_job_id(cmd("qsub", str(array_script(pbs, tmp_path, body, 6, 1)))
                                 .stdout)
    time.sleep(1.5)
    change = ["-W", "max_run_subjobs=3"] if pbs.flavor == "openpbs" else ["-t", "%3"]
    assert cmd("qalter", *change, array).returncode == 0
    wait_over(pbs, array, timeout=30)
    edges = []
    for i in range(1, 7):
        for line in (tmp_path / f"log.{i}").read_text().split("\n"):
            if line:
                word, when = line.split()
                edges.append((float(when), 1 if word == "start" else -1))
    running = peak = 0
    for _, step in sorted(edges):
        running += step
        peak = max(peak, running)
    assert peak == 3  # 1 at first, then the raised limit


def test_walltime_kills_and_reads_as_walltime_exceeded(pbs, tmp_path):
    script = array_script(pbs, tmp_path, "sleep 30\n", 2, extra="#PBS -l walltime=00:00:01\n")
    array = pp.parse_qsub_job_id(cmd("qsub", str(script)).stdout)
    records = wait_over(pbs, array)
    assert {pp.job_state(r) for k, r in records.items() if "[]" not in k} == {
        "walltime exceeded"}


def test_qdel_qsig_and_qrerun(pbs, tmp_path):
    body = (f"trap 'echo TERM >> {tmp_path}/sig.$i; exit 7' USR1\n"
            f'echo run >> {tmp_path}/runs.$i\nsleep 30 & wait $!\n')
    array = pp.parse_qsub_job_id(cmd("qsub", str(array_script(pbs, tmp_path, body, 3))).stdout)
    ids = [array.replace("[]", f"[{i}]") for i in (1, 2, 3)]
    deadline = time.time() + 20
    while not all((tmp_path / f"runs.{i}").exists() for i in (1, 2, 3)):
        assert time.time() < deadline
        time.sleep(0.1)
    assert cmd("qsig", "-s", "USR1", ids[0]).returncode == 0
    assert cmd("qrerun", ids[1]).returncode == 0
    deadline = time.time() + 20
    while len((tmp_path / "runs.2").read_text().split()) < 2:
        assert time.time() < deadline
        time.sleep(0.1)
    assert cmd("qdel", ids[1], ids[2]).returncode == 0
    records = wait_over(pbs, array)
    assert pp.job_state(records["1001[1]"]) == "exit status 7"
    assert (tmp_path / "sig.1").read_text() == "TERM\n"
    assert pp.job_state(records["1001[2]"]) == pp.job_state(records["1001[3]"]) == "killed"
    late = cmd("qdel", ids[2])
    assert late.returncode != 0 and not pp.scheduler_errors(late.stderr)


def test_qsub_refusals_are_pbs_s_words(pbs, tmp_path):
    script = tmp_path / "j.sh"
    script.write_text("#!/bin/sh\n#PBS -l frobs=2\ntrue\n")
    done = cmd("qsub", str(script))
    assert done.returncode != 0 and "Unknown resource" in done.stderr
    done = cmd("qsub", "-Y", str(script))
    assert done.returncode != 0 and "invalid option -- 'Y'" in done.stderr
    assert not list((pbs.state / "jobs").glob("*.state.json"))


def test_server_limits_and_unknown_ids(pbs, monkeypatch):
    monkeypatch.setenv("PBS_EMULATOR_MAX_ARRAY", "7")
    argv = ["qstat", "-B", "-f", *(["-F", "json"] if pbs.flavor == "openpbs" else [])]
    text = cmd(*argv).stdout
    servers = (pp.parse_server_json(text) if pbs.flavor == "openpbs"
               else pp.parse_attribute_blocks(text, "Server"))
    assert pp.max_array_size(servers) == 7
    done = cmd("qstat", "-f", "-t", "4242[].pbsemu")
    assert done.returncode == 153 and not pp.scheduler_errors(done.stderr)


def test_depend_and_variables(pbs, tmp_path):
    first = tmp_path / "a.sh"
    first.write_text(f"#!/bin/sh\nsleep 1\necho a >> {tmp_path}/order\n")
    job = pp.parse_qsub_job_id(cmd("qsub", str(first), cwd=tmp_path).stdout)
    second = tmp_path / "b.sh"
    second.write_text(f'#!/bin/sh\necho "b $GREETING" >> {tmp_path}/order\n')
    done = cmd("qsub", "-W", f"depend=afterok:{job}", "-v", "GREETING=hi", str(second),
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    wait_over(pbs, pp.parse_qsub_job_id(done.stdout))
    assert (tmp_path / "order").read_text() == "a\nb hi\n"
