"""A small emulator of PBS -- OpenPBS / PBS Professional, or Torque -- for tests only.

PBS is not packaged in Debian, so the PBS backend's tests run against this emulator: ``qsub``,
``qstat``, ``qdel``, ``qsig``, ``qrerun``, ``qalter`` and ``qselect``. It really executes
jobs: ``qsub`` records the job in a state directory (env ``PBS_EMULATOR_STATE``) and starts
one detached runner process per job, which runs the job script with ``/bin/sh`` once per
subjob (``PBS_ARRAY_INDEX`` on OpenPBS, ``PBS_ARRAYID`` on Torque; ``PBS_JOBID``,
``PBS_JOBNAME``, ``PBS_O_WORKDIR``, ``NCPUS`` / ``PBS_NUM_PPN``), each in a process group of
its own, holds the array's limit of running subjobs (``-W max_run_subjobs=N`` or ``-J
1-N%K`` on OpenPBS, ``-t 1-N%K`` on Torque, changed by ``qalter``), enforces ``-l walltime``
(SIGTERM, then SIGKILL after the kill delay), writes the ``-o`` / ``-e`` files, honours ``-W
depend=afterok:ID`` / ``afterany:ID`` and ``-v``. The runner is the only writer of a job's
state file; ``qdel``, ``qsig`` and ``qrerun`` leave markers it acts on.

``PBS_EMULATOR_FLAVOR`` picks what it speaks: ``openpbs`` (default; ``-J``, ``qstat -f -F
json`` in OpenPBS's layout, finished jobs shown with ``-x`` only) or ``torque`` (``-t``,
``qstat -f`` text, completed jobs kept in state ``C``). Other knobs: ``PBS_EMULATOR_KILL_DELAY``
(seconds between SIGTERM and SIGKILL, the server's ``kill_delay``; default 10),
``PBS_EMULATOR_MAX_ARRAY`` (``max_array_size``; default 10000), ``PBS_EMULATOR_DISPATCH_DELAY``
(seconds a job stays queued before it may start; default 0), ``PBS_EMULATOR_NO_MAX_RUN_SUBJOBS``
(``1``: an old server without the ``max_run_subjobs`` attribute, which qsub and qalter refuse).
Every invocation appends ``<tool> <epoch> <argv as JSON>`` to ``<state>/calls.log``.

What it does not do: no nodes, scheduling policy, queues' limits, reservations, hooks, job
history expiry, accounting logs, ``qstat`` without ``-f`` (or ``-B -f``), ``-I``
interactive jobs, checkpoints, mail; resources are recorded and shown, never enforced (except
the walltime); the job runs with the submitter's whole environment (as with ``qsub -V``).
See README.md in this folder for the documentation each behaviour follows.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SERVER = "pbsemu"
#: qsub's options by flavour: those taking a value, and bare flags (``man qsub``)
VALUED = {"openpbs": set("aAcCeJlmMNoPpqrRSuvW"), "torque": set("aAbcCdDeFjklLmMNopPqrStTuvwW")}
BARE = {"openpbs": set("hIVXzf"), "torque": set("fhInVxXz")}
RESOURCES = {"select", "ncpus", "ngpus", "mem", "vmem", "walltime", "place", "nodes", "host",
             "cput", "pmem", "gpus", "ppn", "software", "nodect", "mpiprocs", "ompthreads"}
POLL = 0.05


def flavor() -> str:
    return os.environ.get("PBS_EMULATOR_FLAVOR", "openpbs")


# ---------------------------------------------------------------- state directory
def state_dir() -> Path:
    root = os.environ.get("PBS_EMULATOR_STATE")
    if not root:
        sys.stderr.write("PBS emulator: set PBS_EMULATOR_STATE to a directory\n")
        sys.exit(255)
    path = Path(root)
    (path / "jobs").mkdir(parents=True, exist_ok=True)
    return path


def log_call(root: Path, tool: str, argv: list[str]) -> None:
    with open(root / "calls.log", "a") as f:
        f.write(f"{tool} {time.time():.3f} {json.dumps(argv)}\n")


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def next_job_id(root: Path) -> int:
    with open(root / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = root / "next_id"
        job_id = int(counter.read_text()) if counter.exists() else 1001
        counter.write_text(str(job_id + 1))
    return job_id


def job_path(root: Path, job_id: int) -> Path:
    return root / "jobs" / f"{job_id}.json"


def state_path(root: Path, job_id: int) -> Path:
    return root / "jobs" / f"{job_id}.state.json"


def marker(root: Path, job_id: int, index: str, kind: str) -> Path:
    """Where qdel (``kill``), qsig (``signal``) and qrerun (``rerun``) leave word for the
    runner about one subjob (``index``; ``0`` for a plain job)."""
    return root / "jobs" / f"{job_id}.{kind}.{index}"


def limit_path(root: Path, job_id: int) -> Path:
    """Where qalter leaves an array's new limit of running subjobs."""
    return root / "jobs" / f"{job_id}.max_run"


def all_job_ids(root: Path) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in (root / "jobs").glob("*.state.json"))


# ---------------------------------------------------------------- qsub
def parse_options(tokens: list[str], kind: str) -> tuple[list[tuple[str, str]], list[str]]:
    """qsub options (``-X value`` / ``-Xvalue`` / bare flags) up to the first operand."""
    opts: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("-") or len(tok) < 2:
            break
        letter = tok[1]
        if letter in BARE[kind] and len(tok) == 2:
            opts.append((letter, ""))
            i += 1
        elif letter in VALUED[kind]:
            if len(tok) > 2:
                opts.append((letter, tok[2:]))
                i += 1
            elif i + 1 < len(tokens):
                opts.append((letter, tokens[i + 1]))
                i += 2
            else:
                raise ValueError(f"option requires an argument -- '{letter}'")
        else:
            raise ValueError(f"invalid option -- '{tok[1:]}'")
    return opts, tokens[i:]


def script_directives(script: str) -> list[str]:
    """Tokens of the ``#PBS`` lines before the script's first command."""
    tokens: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("#PBS"):
            tokens += shlex.split(stripped[len("#PBS"):])
        elif stripped and not stripped.startswith("#"):
            break
    return tokens


def parse_range(spec: str, kind: str) -> tuple[list[int], int]:
    """``1-10`` / ``1-10:2`` / ``1-10%3`` (OpenPBS ``-J``) or ``1-5,7,9-10%3`` (Torque ``-t``)
    -> (indices, limit of running subjobs; 0: none)."""
    spec, _, limit = spec.partition("%")
    if limit and not limit.isdigit():
        raise ValueError(spec)
    indices: list[int] = []
    parts = spec.split(",") if kind == "torque" else [spec]
    for part in parts:
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if not m or (kind == "openpbs" and not m.group(2)):
            raise ValueError(spec)
        start, end, step = int(m.group(1)), int(m.group(2) or m.group(1)), int(m.group(3) or 1)
        if end < start or step < 1:
            raise ValueError(spec)
        indices += range(start, end + 1, step)
    # OpenPBS: "X must be less than Y"; an array of one subjob is refused
    if len(set(indices)) != len(indices) or (kind == "openpbs" and len(indices) < 2):
        raise ValueError(spec)
    return indices, int(limit or 0)


def parse_resources(values: list[str]) -> dict[str, str]:
    """``-l`` values (``select=1:ncpus=2:ngpus=1:mem=8gb``, ``walltime=01:00:00``,
    ``nodes=1:ppn=2:gpus=1``) -> {resource: value}; ValueError names an unknown one."""
    found: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            name, _, amount = item.partition("=")
            name = name.strip()
            if name not in RESOURCES:
                raise LookupError(name)
            found[name] = amount.strip()
            for chunk in amount.split(":")[1:] if name in ("select", "nodes") else ():
                key, _, val = chunk.partition("=")
                if key not in RESOURCES:
                    raise LookupError(key)
                found[key] = val
    return found


def duration(text: str) -> float:
    """``[[HH:]MM:]SS`` -> seconds."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def qsub(argv: list[str]) -> int:
    root = state_dir()
    log_call(root, "qsub", argv)
    kind = flavor()
    try:
        cli, operands = parse_options(argv, kind)
        if not operands:
            script = sys.stdin.read()
            cwd_script = None
        else:
            cwd_script = os.path.abspath(operands[0])
            script = Path(cwd_script).read_text()
        directives, _ = parse_options(script_directives(script), kind)
    except ValueError as exc:
        sys.stderr.write(f"qsub: {exc}\nusage: qsub [options] [script]\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"qsub: script file:: {exc.strerror}\n")
        return 2
    # "options on the command line take precedence over directives in the script"
    opts: dict[str, list[str]] = {}
    for letter, value in directives:
        opts.setdefault(letter, []).append(value)
    for letter, value in cli:
        opts[letter] = [value] if letter != "l" else opts.get("l", []) + [value]
    array_flag = "J" if kind == "openpbs" else "t"
    indices, max_run = [0], 0
    if array_flag in opts:
        try:
            indices, max_run = parse_range(opts[array_flag][-1], kind)
        except ValueError:
            sys.stderr.write(f"qsub: illegal -{array_flag} value\n")
            return 2
        if len(indices) > int(os.environ.get("PBS_EMULATOR_MAX_ARRAY", "10000")):
            sys.stderr.write("qsub: Array job exceeds server or queue size limit\n")
            return 2
    extra: dict[str, str] = {}
    for value in opts.get("W", []):
        for item in value.split(","):
            name, _, amount = item.partition("=")
            extra[name.strip()] = amount.strip()
    if "max_run_subjobs" in extra:
        if os.environ.get("PBS_EMULATOR_NO_MAX_RUN_SUBJOBS") == "1":
            sys.stderr.write("qsub: Undefined attribute max_run_subjobs\n")
            return 2
        max_run = int(extra["max_run_subjobs"]) if extra["max_run_subjobs"].isdigit() else 0
    try:
        resources = parse_resources(opts.get("l", []))
    except LookupError as exc:
        sys.stderr.write(f"qsub: Unknown resource Resource_List.{exc.args[0]}\n"
                         if kind == "openpbs" else
                         f"qsub: submit error (Unknown resource type  Resource_List."
                         f"{exc.args[0]})\n")
        return 2
    depends = []
    if extra.get("depend"):
        how, _, ids = extra["depend"].partition(":")
        depends = [(how, int(re.match(r"\d+", i).group())) for i in ids.split(":") if i]
    env = dict(os.environ)
    for value in opts.get("v", []):
        for item in value.split(","):
            name, _, amount = item.partition("=")
            env[name] = amount if _ else os.environ.get(name, "")
    job_id = next_job_id(root)
    array = array_flag in opts
    name = (opts.get("N") or [Path(cwd_script).name if cwd_script else "STDIN"])[-1]
    script_file = root / "jobs" / f"{job_id}.script"
    script_file.write_text(script)
    cwd = os.getcwd()
    job = {"id": job_id, "name": name, "array": array, "indices": indices, "max_run": max_run,
           "queue": (opts.get("q") or ["workq"])[-1], "resources": resources,
           "walltime": duration(resources["walltime"]) if "walltime" in resources else None,
           "out": (opts.get("o") or [""])[-1], "err": (opts.get("e") or [""])[-1],
           "depends": depends, "cwd": cwd, "env": env, "script": str(script_file),
           "submit_time": time.time(), "user": getpass.getuser(), "flavor": kind,
           "account": (opts.get("A") or [""])[-1]}
    write_json(job_path(root, job_id), job)
    subjobs = {str(i): {"state": "Q", "exit_status": None, "start": None, "end": None,
                        "pid": None, "reruns": 0} for i in indices}
    write_json(state_path(root, job_id), {"runner_pid": None, "subjobs": subjobs})
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "run", str(root), str(job_id)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    print(f"{job_id}[].{SERVER}" if array else f"{job_id}.{SERVER}")
    return 0


# ---------------------------------------------------------------- the runner
def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def job_id_text(job: dict[str, Any], index: str) -> str:
    return f"{job['id']}[{index}].{SERVER}" if job["array"] else f"{job['id']}.{SERVER}"


def output_path(job: dict[str, Any], index: str, which: str) -> Path:
    """Where ``-o`` / ``-e`` send a subjob's output: the path with ``^array_index^`` replaced
    (OpenPBS), or in a directory path ``<name>.o<seq>[-<index>]`` (Torque's default name);
    by default the submission directory."""
    given = job["out" if which == "o" else "err"]
    seq = f"{job['id']}" + (f"-{index}" if job["array"] else "")
    default = f"{job['name']}.{which}{seq}"
    if not given:
        return Path(job["cwd"]) / default
    path = given.replace("^array_index^", index)
    path = path.split(":", 1)[1] if re.match(r"^[\w.-]+:/", path) else path
    if path.endswith("/") or os.path.isdir(path):
        return Path(path) / default
    return Path(path) if os.path.isabs(path) else Path(job["cwd"]) / path


class Running:
    """One running subjob: its process, and the kill under way."""

    def __init__(self, proc: subprocess.Popen[bytes], started: float) -> None:
        self.proc = proc
        self.started = started
        self.why: str | None = None  # "qdel", "walltime", "rerun"
        self.signal = 0  # the last signal the server sent to end it
        self.kill_at = 0.0


def dependencies_met(root: Path, job: dict[str, Any]) -> bool | None:
    """True when the job may start, False while it waits, None when it never will."""
    for how, other in job["depends"]:
        try:
            subjobs = read_json(state_path(root, other))["subjobs"].values()
        except (OSError, ValueError):
            continue
        if not all(is_over(s["state"]) for s in subjobs):
            return False
        if how == "afterok" and any(s["exit_status"] != 0 for s in subjobs):
            return None
    return True


def run(root: Path, job_id: int) -> None:
    job = read_json(job_path(root, job_id))
    state = read_json(state_path(root, job_id))
    state["runner_pid"] = os.getpid()
    subjobs = state["subjobs"]
    write_json(state_path(root, job_id), state)
    delay = float(os.environ.get("PBS_EMULATOR_KILL_DELAY", "10"))
    dispatch_at = job["submit_time"] + float(os.environ.get("PBS_EMULATOR_DISPATCH_DELAY", "0"))
    pending = [str(i) for i in job["indices"]]
    running: dict[str, Running] = {}
    torque = job["flavor"] == "torque"
    done_state = "C" if torque else ("X" if job["array"] else "F")

    def save() -> None:
        write_json(state_path(root, job_id), state)

    def start(index: str) -> None:
        env = dict(job["env"], PBS_JOBID=job_id_text(job, index), PBS_JOBNAME=job["name"],
                   PBS_O_WORKDIR=job["cwd"], PBS_QUEUE=job["queue"], PBS_ENVIRONMENT="PBS_BATCH",
                   PBS_JOBDIR=job["cwd"])
        ncpus = job["resources"].get("ncpus") or job["resources"].get("ppn") or "1"
        env["PBS_NUM_PPN" if torque else "NCPUS"] = ncpus
        if job["array"]:
            env["PBS_ARRAYID" if torque else "PBS_ARRAY_INDEX"] = index
            env["PBS_ARRAY_ID"] = f"{job['id']}[].{SERVER}"
        handles = []
        for which in ("o", "e"):
            try:
                handles.append(open(output_path(job, index, which), "w"))  # noqa: SIM115
            except OSError:
                handles.append(subprocess.DEVNULL)
        proc = subprocess.Popen(["/bin/sh", job["script"]], cwd=os.environ.get("HOME", "/"),
                                env=env, stdin=subprocess.DEVNULL, stdout=handles[0],
                                stderr=handles[1], start_new_session=True)
        for handle in handles:
            if hasattr(handle, "close"):
                handle.close()
        running[index] = Running(proc, time.time())
        subjobs[index].update(state="R", start=running[index].started, pid=proc.pid, end=None,
                              exit_status=None)
        save()

    def finish(index: str, el: Running, code: int) -> None:
        signal_group(el.proc.pid, signal.SIGKILL)  # the MoM cleans up the job's processes
        del running[index]
        if el.why == "rerun":  # "the job is requeued ... and will be run again"
            marker(root, job_id, index, "rerun").unlink(missing_ok=True)
            subjobs[index].update(state="Q", start=None, pid=None,
                                  reruns=subjobs[index]["reruns"] + 1)
            pending.insert(0, index)
        else:
            status = 256 + el.signal if el.why and el.signal else code
            subjobs[index].update(state=done_state, exit_status=status, end=time.time(),
                                  pid=None, used=time.time() - el.started)
        save()

    while pending or running:
        met = dependencies_met(root, job)
        with contextlib.suppress(OSError, ValueError):
            job["max_run"] = int(limit_path(root, job_id).read_text())
        for index in list(pending):
            if marker(root, job_id, index, "kill").exists() or met is None:
                pending.remove(index)
                subjobs[index].update(state=done_state, end=time.time())
                save()
        limit = job["max_run"] or len(job["indices"])
        while pending and met and len(running) < limit and time.time() >= dispatch_at:
            start(pending.pop(0))
        now = time.time()
        for index, el in list(running.items()):
            code = el.proc.poll()
            if code is not None:
                finish(index, el, code if code >= 0 else 128 - code)
                continue
            pgid = el.proc.pid
            sig = marker(root, job_id, index, "signal")
            if sig.exists():  # qsig: that signal only
                with contextlib.suppress(OSError, ValueError, KeyError):
                    signal_group(pgid, signal.Signals[sig.read_text().strip()])
                sig.unlink(missing_ok=True)
            if el.why is None:
                if marker(root, job_id, index, "kill").exists():
                    el.why = "qdel"
                elif marker(root, job_id, index, "rerun").exists():
                    el.why = "rerun"
                elif job["walltime"] is not None and now - el.started > job["walltime"]:
                    el.why = "walltime"
                if el.why is not None:  # SIGTERM, then SIGKILL after the kill delay
                    el.signal, el.kill_at = signal.SIGTERM, now + delay
                    signal_group(pgid, signal.SIGTERM)
            elif now >= el.kill_at and el.signal != signal.SIGKILL:
                el.signal = signal.SIGKILL
                signal_group(pgid, signal.SIGKILL)
        time.sleep(POLL)


# ---------------------------------------------------------------- job ids
def parse_job_arg(arg: str) -> tuple[int, str | None]:
    """``1234``, ``1234.server``, ``1234[]``, ``1234[3].server`` -> (1234, None / "" / "3")."""
    m = re.fullmatch(r"(\d+)(?:\[(\d*)\])?(?:\.[\w.-]+)?", arg.strip())
    if not m:
        raise ValueError(arg)
    return int(m.group(1)), m.group(2)


def load(root: Path, job_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
    try:
        return read_json(job_path(root, job_id)), read_json(state_path(root, job_id))["subjobs"]
    except (OSError, ValueError):
        return None


def is_over(state: str) -> bool:
    return state in ("X", "F", "C")


# ---------------------------------------------------------------- qstat
def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def attributes(job: dict[str, Any], sub: dict[str, Any] | None, subjobs: dict[str, Any],
               index: str | None) -> dict[str, Any]:
    """One job's (``sub`` None: a whole array's) attributes, nested as OpenPBS's JSON."""
    res = job["resources"]
    limits = {k: v for k, v in res.items() if k in ("ncpus", "ngpus", "mem", "walltime",
                                                    "select", "nodes", "place")}
    if "ncpus" in res:
        limits["ncpus"] = int(res["ncpus"])
    if "ngpus" in res:
        limits["ngpus"] = int(res["ngpus"])
    name = job["name"] if not (job["flavor"] == "torque" and index) else f"{job['name']}-{index}"
    attrs: dict[str, Any] = {
        "Job_Name": name, "Job_Owner": f"{job['user']}@{socket.gethostname()}",
        "queue": job["queue"], "server": SERVER,
        "ctime": time.ctime(job["submit_time"]), "Resource_List": limits,
    }
    if job["account"]:
        attrs["Account_Name"] = job["account"]
    if sub is None:  # the array itself
        states = [s["state"] for s in subjobs.values()]
        over = all(is_over(s) for s in states)
        started = any(s != "Q" for s in states)
        attrs["job_state"] = ("C" if job["flavor"] == "torque" else "F") if over else (
            ("R" if job["flavor"] == "torque" else "B") if started else "Q")
        attrs["array"] = "True"
        attrs["array_indices_submitted"] = ranges([int(i) for i in subjobs])
        remaining = [int(i) for i, s in subjobs.items() if s["state"] == "Q"]
        if remaining:
            attrs["array_indices_remaining"] = ranges(remaining)
        if job["max_run"]:
            attrs["max_run_subjobs"] = job["max_run"]
        if over:
            codes = [s["exit_status"] for s in subjobs.values()]
            # "0: all subjobs exited 0; 1: at least one did not; 2: one or more was deleted"
            attrs["Exit_status"] = 2 if None in codes or any(c > 256 for c in codes) else (
                1 if any(codes) else 0)
        return attrs
    attrs["job_state"] = sub["state"]
    if index is not None and job["array"]:
        attrs["array_id"] = f"{job['id']}[].{SERVER}"
        attrs["array_index"] = int(index)
    if sub["start"] is not None:
        used = (sub.get("used") if is_over(sub["state"]) else None) or time.time() - sub["start"]
        attrs["stime"] = time.ctime(sub["start"])
        attrs["resources_used"] = {"cpupercent": 0, "cput": hms(0), "mem": "0kb",
                                   "ncpus": int(res.get("ncpus") or res.get("ppn") or 1),
                                   "vmem": "0kb", "walltime": hms(used)}
    if sub["reruns"]:
        attrs["run_count"] = sub["reruns"] + 1
    if sub["exit_status"] is not None:
        attrs["Exit_status" if job["flavor"] == "openpbs" else "exit_status"] = sub["exit_status"]
    return attrs


def ranges(indices: list[int]) -> str:
    """[1, 2, 3, 5] -> ``1-3,5``."""
    parts: list[str] = []
    for i in sorted(indices):
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts)


def torque_text(jobs: dict[str, dict[str, Any]]) -> str:
    """Torque's ``qstat -f``: ``Job Id: ID`` then ``    name = value``, nested names dotted."""
    lines = []
    for job_id, attrs in jobs.items():
        lines.append(f"Job Id: {job_id}")
        for key, value in attrs.items():
            if isinstance(value, dict):
                lines += [f"    {key}.{k} = {v}" for k, v in value.items()]
            else:
                lines.append(f"    {key} = {value}")
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def server_status(kind: str, as_json: bool) -> str:
    attrs = {"server_state": "Active", "server_host": socket.gethostname(),
             "default_queue": "workq", "max_array_size" if kind == "openpbs"
             else "max_job_array_size": int(os.environ.get("PBS_EMULATOR_MAX_ARRAY", "10000")),
             "pbs_version": "23.06.06" if kind == "openpbs" else "6.1.3"}
    if as_json:
        return json.dumps({"timestamp": int(time.time()), "pbs_version": attrs["pbs_version"],
                           "pbs_server": SERVER, "Server": {SERVER: attrs}}, indent=4) + "\n"
    return f"Server: {SERVER}\n" + "".join(f"    {k} = {v}\n" for k, v in attrs.items()) + "\n"


def qstat(argv: list[str]) -> int:
    root = state_dir()
    log_call(root, "qstat", argv)
    kind = flavor()
    full = subjobs_too = history = as_json = servers = False
    ids: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-F":
            i += 1
            if i >= len(argv) or argv[i] not in ("json", "dsv") or kind != "openpbs":
                sys.stderr.write("qstat: invalid option -- 'F'\n" if kind != "openpbs"
                                 else "qstat: unsupported -F format\n")
                return 2
            as_json = argv[i] == "json"
        elif arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter not in "ftxB":
                    sys.stderr.write(f"qstat: invalid option -- '{letter}'\n")
                    return 2
                full |= letter == "f"
                subjobs_too |= letter == "t"
                history |= letter == "x"
                servers |= letter == "B"
        else:
            ids.append(arg)
        i += 1
    if servers:
        sys.stdout.write(server_status(kind, as_json))
        return 0
    if not full:
        sys.stderr.write("PBS emulator: qstat supports -f (and -B -f) only\n")
        return 2
    # OpenPBS: finished jobs only with -x (job history); Torque keeps completed jobs (C)
    show_over = history or kind == "torque"
    shown: dict[str, dict[str, Any]] = {}
    rc = 0
    selected: list[tuple[int, str | None, str | None]] = []
    for arg in ids:
        try:
            selected.append((*parse_job_arg(arg), arg))
        except ValueError:
            sys.stderr.write(f"qstat: illegally formed job identifier: {arg}\n")
            rc = 1
    if not ids:
        selected = [(j, None, None) for j in all_job_ids(root)]
    for job_id, index, arg in selected:
        found = load(root, job_id)
        if found is None or (index not in (None, "") and index not in found[1]):
            sys.stderr.write(f"qstat: Unknown Job Id {arg}\n")
            rc = 153
            continue
        job, subjobs = found
        whole = attributes(job, None, subjobs, None) if job["array"] else None
        if not job["array"]:
            whole = attributes(job, subjobs["0"], subjobs, None)
        if index not in (None, "") and job["array"]:
            entries = [(job_id_text(job, index), attributes(job, subjobs[index], subjobs, index))]
        else:
            entries = [(f"{job_id}[].{SERVER}" if job["array"] else f"{job_id}.{SERVER}",
                        whole)]
            if job["array"] and subjobs_too:
                entries += [(job_id_text(job, k), attributes(job, s, subjobs, k))
                            for k, s in subjobs.items()]
        if not show_over and all(is_over(a["job_state"]) for _, a in entries):
            if arg is not None:
                sys.stderr.write(f"qstat: {arg} Job has finished, use -x or -H to obtain "
                                 "historical job information\n")
                rc = 35
            continue
        shown.update(entries)
    if as_json:
        sys.stdout.write(json.dumps({"timestamp": int(time.time()), "pbs_version": "23.06.06",
                                     "pbs_server": SERVER, "Jobs": shown}, indent=4) + "\n")
    else:
        sys.stdout.write(torque_text(shown))
    return rc


# ---------------------------------------------------------------- qdel, qsig, qrerun
def each_subjob(root: Path, tool: str, argv: list[str], kind: str, states: set[str],
                write: Any) -> int:
    """Leave the ``kind`` marker (text from ``write``) for each subjob of each id in one of
    ``states``; PBS's errors for the rest."""
    rc = 0
    for arg in argv:
        try:
            job_id, index = parse_job_arg(arg)
        except ValueError:
            sys.stderr.write(f"{tool}: illegally formed job identifier: {arg}\n")
            rc = 1
            continue
        found = load(root, job_id)
        if found is None or (index not in (None, "") and index not in found[1]):
            sys.stderr.write(f"{tool}: Unknown Job Id {arg}\n")
            rc = 153
            continue
        subjobs = found[1]
        keys = list(subjobs) if index in (None, "") else [index]
        live = [k for k in keys if subjobs[k]["state"] in states]
        if not live:
            if all(is_over(subjobs[k]["state"]) for k in keys):
                sys.stderr.write(f"{tool}: Job has finished {arg}\n")
            else:
                sys.stderr.write(f"{tool}: Request invalid for state of job {arg}\n")
            rc = 35 if tool != "qsig" else 168
            continue
        for k in live:
            marker(root, job_id, k, kind).write_text(write)
    return rc


def qdel(argv: list[str]) -> int:
    """``qdel ID...``: a queued subjob is dropped, a running one gets SIGTERM, then SIGKILL."""
    root = state_dir()
    log_call(root, "qdel", argv)
    ids = [a for a in argv if not a.startswith("-")]
    return each_subjob(root, "qdel", ids, "kill", {"Q", "R", "H", "W"}, "")


def qsig(argv: list[str]) -> int:
    """``qsig [-s SIGNAL] ID...``: the signal (default SIGTERM) to each running job."""
    root = state_dir()
    log_call(root, "qsig", argv)
    name = "TERM"
    if argv[:1] == ["-s"]:
        if len(argv) < 2:
            sys.stderr.write("qsig: option requires an argument -- 's'\n")
            return 2
        name, argv = argv[1], argv[2:]
    sig = name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper()
    if name.isdigit():
        sig = signal.Signals(int(name)).name
    if sig not in signal.Signals.__members__:
        sys.stderr.write(f"qsig: Unknown signal {name}\n")
        return 2
    return each_subjob(root, "qsig", argv, "signal", {"R"}, sig)


def qrerun(argv: list[str]) -> int:
    """``qrerun ID...``: a running job is killed and queued again, to run from the start."""
    root = state_dir()
    log_call(root, "qrerun", argv)
    return each_subjob(root, "qrerun", [a for a in argv if not a.startswith("-")], "rerun",
                       {"R"}, "")


# ---------------------------------------------------------------- qalter, qselect
def qalter(argv: list[str]) -> int:
    """Only an array's limit of running subjobs: ``qalter -W max_run_subjobs=N ID``
    (OpenPBS) or ``qalter -t %N ID`` (Torque)."""
    root = state_dir()
    log_call(root, "qalter", argv)
    kind = flavor()
    m = None
    if len(argv) == 3 and argv[0] == "-W" and kind == "openpbs":
        if os.environ.get("PBS_EMULATOR_NO_MAX_RUN_SUBJOBS") == "1":
            sys.stderr.write("qalter: Undefined attribute max_run_subjobs\n")
            return 2
        m = re.fullmatch(r"max_run_subjobs=(\d+)", argv[1])
    elif len(argv) == 3 and argv[0] == "-t" and kind == "torque":
        m = re.fullmatch(r"%(\d+)", argv[1])
    if m is None:
        sys.stderr.write("PBS emulator: qalter supports only the array's running limit\n")
        return 2
    try:
        job_id, index = parse_job_arg(argv[2])
    except ValueError:
        sys.stderr.write(f"qalter: illegally formed job identifier: {argv[2]}\n")
        return 1
    if index != "" or load(root, job_id) is None:
        sys.stderr.write(f"qalter: Unknown Job Id {argv[2]}\n")
        return 153
    write_json(limit_path(root, job_id), int(m.group(1)))
    return 0


def qselect(argv: list[str]) -> int:
    """``qselect -N NAME [-x]``: the ids of the jobs of that name (finished ones only with
    ``-x`` on OpenPBS)."""
    root = state_dir()
    log_call(root, "qselect", argv)
    name = argv[argv.index("-N") + 1] if "-N" in argv[:-1] else None
    show_over = "-x" in argv or flavor() == "torque"
    for job_id in all_job_ids(root):
        found = load(root, job_id)
        if found is None or (name is not None and found[0]["name"] != name):
            continue
        job, subjobs = found
        if show_over or not all(is_over(s["state"]) for s in subjobs.values()):
            print(f"{job_id}[].{SERVER}" if job["array"] else f"{job_id}.{SERVER}")
    return 0


TOOLS = {"qsub": qsub, "qstat": qstat, "qdel": qdel, "qsig": qsig, "qrerun": qrerun,
         "qalter": qalter, "qselect": qselect}


def main(tool: str, argv: list[str]) -> int:
    if tool == "run":
        run(Path(argv[0]), int(argv[1]))
        return 0
    return TOOLS[tool](argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
