"""A small emulator of IBM Spectrum LSF's bsub, bjobs, bkill, bmod, bparams and brequeue, for
tests only.

LSF is proprietary and cannot be installed here, so the LSF backend's tests run against this
emulator. It really executes jobs: ``bsub`` records the job in a state directory (env
``LSF_EMULATOR_STATE``) and starts one detached runner process per submission; the runner
executes the job script with ``/bin/sh`` once per array element (honouring the ``%k`` slot
limit), enforces ``-W`` and ``-M``, writes the ``-o``/``-e`` files and appends a job report.
The runner is the only writer of a job's state file; ``bkill`` leaves a marker that the runner
acts on (SIGINT, SIGTERM, then SIGKILL after the terminate interval).

Test knobs (environment): ``LSF_EMULATOR_MINUTE_SECONDS`` (length of one ``-W`` minute,
default 60), ``LSF_EMULATOR_TERMINATE_INTERVAL`` (seconds between the kill signals, default
10), ``LSF_EMULATOR_MAX_ARRAY`` (MAX_JOB_ARRAY_SIZE, default 1000),
``LSF_EMULATOR_DEFAULT_QUEUE`` (default ``normal``), ``LSF_EMULATOR_DISPATCH_DELAY`` (seconds
a job stays PEND before its first element may start, as on a busy cluster; default 0).
Besides those four commands, ``bmod -J "%N" job_ID`` changes an array's job slot limit,
``bjobs -J name`` selects jobs by name, ``brequeue`` kills running elements and puts them
back in the queue (they start over, same job ID and index), and ``-wa SIGNAL -wt MINUTES``
sends the warning signal that long before the ``-W`` run limit. Every invocation appends one line
``<tool> <epoch> <argv as JSON>`` to ``<state>/calls.log``.
See README.md in this folder for the IBM documentation each behaviour follows.
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

FLAGS = {"-x", "-N", "-B", "-r", "-rn", "-H", "-K", "-I", "-Ip", "-Is"}
VALUED = {"-J", "-o", "-oo", "-e", "-eo", "-W", "-We", "-q", "-n", "-R", "-gpu", "-M", "-P",
          "-cwd", "-u", "-app", "-G", "-g", "-w", "-sp", "-m", "-E", "-Ep", "-L", "-i",
          "-wa", "-wt"}
UNFINISHED = {"PEND", "PSUSP", "RUN", "USUSP", "SSUSP"}
POLL = 0.05


# ---------------------------------------------------------------- state directory
def state_dir() -> Path:
    root = os.environ.get("LSF_EMULATOR_STATE")
    if not root:
        sys.stderr.write("LSF emulator: set LSF_EMULATOR_STATE to a directory\n")
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


def job_path(root: Path, job_id: int | str) -> Path:
    return root / "jobs" / f"{job_id}.json"


def state_path(root: Path, job_id: int | str) -> Path:
    return root / "jobs" / f"{job_id}.state.json"


def kill_marker(root: Path, job_id: int | str, index: int) -> Path:
    return root / "jobs" / f"{job_id}.kill.{index}"


def signal_marker(root: Path, job_id: int | str, index: int) -> Path:
    """Where ``bkill -s SIGNAL`` leaves the signal for a running element's runner."""
    return root / "jobs" / f"{job_id}.signal.{index}"


def requeue_marker(root: Path, job_id: int | str, index: int) -> Path:
    """Where ``brequeue`` asks a running element's runner to kill and requeue it."""
    return root / "jobs" / f"{job_id}.requeue.{index}"


def slot_limit_path(root: Path, job_id: int | str) -> Path:
    """Where ``bmod -J "%N"`` leaves an array's new job slot limit for its runner."""
    return root / "jobs" / f"{job_id}.slot_limit"


def all_job_ids(root: Path) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in (root / "jobs").glob("*.state.json"))


# ---------------------------------------------------------------- bsub
def parse_options(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """bsub options up to the first word that is not an option; the rest is the command."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in FLAGS:
            opts[tok] = ""
            i += 1
        elif tok in VALUED:
            if i + 1 >= len(tokens):
                raise ValueError(f"{tok}: option requires an argument")
            opts[tok] = tokens[i + 1]
            i += 2
        elif tok.startswith("-"):
            raise ValueError(f"{tok}: illegal option")
        else:
            break
    return opts, tokens[i:]


def script_directives(script: str) -> list[str]:
    """Tokens of the ``#BSUB`` lines at the top of a job script (before the first command)."""
    tokens: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("#BSUB"):
            tokens += shlex.split(stripped[len("#BSUB"):])
        elif stripped and not stripped.startswith("#"):
            break
    return tokens


def parse_indices(spec: str) -> list[int]:
    """``1-10:2,15`` -> [1, 3, 5, 7, 9, 15] (LSF's ``start[-end[:step]]`` list)."""
    out: list[int] = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:-(\d+)(?::(\d+))?)?\s*", part)
        if not m:
            raise ValueError(f"bad index list {spec!r}")
        start = int(m.group(1))
        end = int(m.group(2) or start)
        step = int(m.group(3) or 1)
        if start < 1 or end < start or step < 1:
            raise ValueError(f"bad index list {spec!r}")
        out += range(start, end + 1, step)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated index in {spec!r}")
    return out


def parse_runlimit(spec: str) -> float:
    """``[hour:]minute[/host]`` -> seconds (one minute lasts LSF_EMULATOR_MINUTE_SECONDS)."""
    m = re.fullmatch(r"(?:(\d+):)?(\d+)(?:/\S+)?", spec)
    if not m:
        raise ValueError(f"bad run limit {spec!r}")
    minutes = int(m.group(1) or 0) * 60 + int(m.group(2))
    return minutes * float(os.environ.get("LSF_EMULATOR_MINUTE_SECONDS", "60"))


def expand_path(pattern: str, job_id: int, index: int, cwd: str) -> str:
    path = pattern.replace("%J", str(job_id)).replace("%I", str(index))
    if path.endswith("/"):
        path += f"{job_id}.out"
    return path if os.path.isabs(path) else os.path.join(cwd, path)


def bsub(argv: list[str]) -> int:
    root = state_dir()
    log_call(root, "bsub", argv)
    try:
        cli, command = parse_options(argv)
        script = shlex.join(command) if command else sys.stdin.read()
        opts, _ = parse_options(script_directives(script)) if not command else ({}, [])
        opts.update(cli)  # "the command line option overrides the option in the standard input"
        name = opts.get("-J", command[0] if command else "NONAME")
        indices, slot_limit, array = [0], 0, False
        m = re.fullmatch(r"([^\[\]]*)\[([^\]]+)\](?:%(\d+))?", name)
        if m:
            name, indices, array = m.group(1), parse_indices(m.group(2)), True
            slot_limit = int(m.group(3) or 0)
            max_size = int(os.environ.get("LSF_EMULATOR_MAX_ARRAY", "1000"))
            if max(indices) > max_size or len(indices) > max_size:
                sys.stderr.write("Job array index too large. Job not submitted.\n")
                return 255
        runlimit = parse_runlimit(opts["-W"]) if "-W" in opts else None
        memlimit = int(opts["-M"]) if "-M" in opts else None
        # "A job action warning time must be specified with a job warning action in order for
        # job warning to take effect."
        warning = None
        if "-wa" in opts and "-wt" in opts:
            action = opts["-wa"].strip("'\"").upper()
            warning = {"signal": action if action.startswith("SIG") else "SIG" + action,
                       "seconds": parse_runlimit(opts["-wt"].strip("'\""))}
            if warning["signal"] not in signal.Signals.__members__:
                raise ValueError(f"{opts['-wa']}: Illegal signal value")
    except ValueError as exc:
        sys.stderr.write(f"{exc}. Job not submitted.\n")
        return 255
    job_id = next_job_id(root)
    queue = opts.get("-q") or os.environ.get("LSF_EMULATOR_DEFAULT_QUEUE", "normal")
    script_file = root / "jobs" / f"{job_id}.script"
    script_file.write_text(script)
    job = {"id": job_id, "name": name, "array": array, "indices": indices,
           "slot_limit": slot_limit, "queue": queue, "options": opts,
           "runlimit": runlimit, "memlimit_kb": memlimit, "warning": warning,
           "cwd": opts.get("-cwd", os.getcwd()), "env": dict(os.environ),
           "script": str(script_file), "submit_time": time.time(), "user": getpass.getuser()}
    write_json(job_path(root, job_id), job)
    elements = {str(i): {"stat": "PEND", "exit_code": None, "exit_reason": None,
                         "start": None, "end": None, "pid": None} for i in indices}
    write_json(state_path(root, job_id), {"runner_pid": None, "elements": elements})
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "run", str(root), str(job_id)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    where = f"queue <{queue}>" if "-q" in opts else f"default queue <{queue}>"
    print(f"Job <{job_id}> is submitted to {where}.")
    return 0


# ---------------------------------------------------------------- the runner
def group_rss_kb(pgid: int) -> int:
    """Resident memory of every process in a process group, in KB (from /proc)."""
    total = 0
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * page_kb
    return total


def signal_group(pgid: int, *signals: int) -> None:
    for sig in signals:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


REPORT_TEXT = {
    "TERM_RUNLIMIT": "TERM_RUNLIMIT: job killed after reaching LSF run time limit.",
    "TERM_MEMLIMIT": "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit.",
    "TERM_OWNER": "TERM_OWNER: job killed by owner.",
    "TERM_REQUEUE_OWNER": "TERM_REQUEUE_OWNER: job killed and requeued by owner.",
}


def job_report(job: dict[str, Any], index: int, elem: dict[str, Any]) -> str:
    """The LSF-like job report appended to the -o file when an element ends."""
    label = f"{job['id']}[{index}]" if job["array"] else str(job["id"])
    name = f"{job['name']}[{index}]" if job["array"] else job["name"]
    host = socket.gethostname()
    done = elem["stat"] == "DONE"
    lines = ["", "-" * 60, f"Sender: LSF System <lsfadmin@{host}>",
             f"Subject: Job {label}: <{name}> in cluster <emulator> {'Done' if done else 'Exited'}",
             "", f"Job <{name}> was submitted from host <{host}> by user <{job['user']}> "
             f"in cluster <emulator> at {time.ctime(job['submit_time'])}",
             f"Job was executed on host(s) <{host}>, in queue <{job['queue']}>, "
             f"as user <{job['user']}> in cluster <emulator> at {time.ctime(elem['start'])}",
             f"Results reported at {time.ctime(elem['end'])}", ""]
    if done:
        lines.append("Successfully completed.")
    else:
        if elem["exit_reason"]:
            lines.append(REPORT_TEXT[elem["exit_reason"]])
        lines.append(f"Exited with exit code {elem['exit_code']}.")
    lines += ["", "Resource usage summary:", "",
              f"    Run time :                                   "
              f"{round(elem['end'] - elem['start'])} sec.", "",
              "The output (if any) is above this job summary.", ""]
    return "\n".join(lines) + "\n"


def open_output(path: Path | None, mode: str) -> Any:
    """The job's -o/-e file, or DEVNULL when there is none or it cannot be written."""
    if path is None:
        return subprocess.DEVNULL
    try:
        return open(path, mode)  # noqa: SIM115
    except OSError:
        return subprocess.DEVNULL


class Element:
    """One running array element: its process and its kill sequence."""

    def __init__(self, proc: subprocess.Popen[bytes], started: float, out: Path | None) -> None:
        self.proc = proc
        self.started = started
        self.out = out
        self.reason: str | None = None
        self.kill_at = 0.0
        self.warned = False


def run(root: Path, job_id: int) -> None:
    job = read_json(job_path(root, job_id))
    state = read_json(state_path(root, job_id))
    state["runner_pid"] = os.getpid()
    elems = state["elements"]
    write_json(state_path(root, job_id), state)
    opts = job["options"]
    interval = float(os.environ.get("LSF_EMULATOR_TERMINATE_INTERVAL", "10"))
    pending = list(job["indices"])
    running: dict[int, Element] = {}
    limit = job["slot_limit"] or len(pending)
    dispatch_at = job["submit_time"] + float(os.environ.get("LSF_EMULATOR_DISPATCH_DELAY", "0"))

    def save() -> None:
        write_json(state_path(root, job_id), state)

    def start(index: int) -> None:
        env = dict(job["env"], LSB_JOBID=str(job_id), LSB_JOBINDEX=str(index),
                   LSB_JOBNAME=f"{job['name']}[{index}]" if job["array"] else job["name"],
                   LSB_QUEUE=job["queue"])
        out_opt = opts.get("-o") or opts.get("-oo")
        err_opt = opts.get("-e") or opts.get("-eo")
        out = Path(expand_path(out_opt, job_id, index, job["cwd"])) if out_opt else None
        err = Path(expand_path(err_opt, job_id, index, job["cwd"])) if err_opt else None
        # "If the specified output_file path is not accessible, the output will not be stored."
        stdout = open_output(out, "a" if "-o" in opts else "w")
        if err and err != out:
            stderr = open_output(err, "a" if "-e" in opts else "w")
        else:
            stderr = subprocess.STDOUT if out else subprocess.DEVNULL
        if stdout == subprocess.DEVNULL:
            out = None
        proc = subprocess.Popen(["/bin/sh", job["script"]], cwd=job["cwd"], env=env,
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                start_new_session=True)
        for handle in (stdout, stderr):
            if hasattr(handle, "close"):
                handle.close()
        running[index] = Element(proc, time.time(), out)
        elems[str(index)].update(stat="RUN", start=running[index].started, pid=proc.pid)
        save()

    def finish(index: int, el: Element, code: int) -> None:
        signal_group(el.proc.pid, signal.SIGKILL)  # LSF cleans up the job's leftover processes
        if el.reason == "TERM_REQUEUE_OWNER":  # "it is assigned the PEND status"
            elems[str(index)].update(stat="PEND", exit_code=None, exit_reason=None, start=None,
                                     pid=None)
            requeue_marker(root, job_id, index).unlink(missing_ok=True)
            del running[index]
            pending.append(index)
            save()
            return
        stat = "DONE" if code == 0 and el.reason is None else "EXIT"
        elems[str(index)].update(stat=stat, exit_code=None if stat == "DONE" else code,
                                 exit_reason=el.reason, end=time.time())
        if el.out:
            with open(el.out, "a") as f:
                f.write(job_report(job, index, elems[str(index)]))
        del running[index]
        save()

    while pending or running:
        with contextlib.suppress(OSError, ValueError):
            limit = int(slot_limit_path(root, job_id).read_text()) or len(pending) or 1
        for index in list(pending):
            if kill_marker(root, job_id, index).exists():
                pending.remove(index)
                elems[str(index)].update(stat="EXIT", exit_reason="TERM_OWNER", end=time.time())
                save()
        while pending and len(running) < limit and time.time() >= dispatch_at:
            start(pending.pop(0))
        now = time.time()
        for index, el in list(running.items()):
            code = el.proc.poll()
            if code is not None:
                finish(index, el, code if code >= 0 else 128 - code)
                continue
            pgid = el.proc.pid
            marker = signal_marker(root, job_id, index)
            if marker.exists():  # bkill -s: that signal only, no kill sequence
                with contextlib.suppress(OSError, ValueError):
                    signal_group(pgid, signal.Signals[marker.read_text().strip()])
                    marker.unlink()
            warning = job.get("warning")
            if (warning and not el.warned and job["runlimit"] is not None
                    and now - el.started >= job["runlimit"] - warning["seconds"]):
                el.warned = True  # "LSF sends the warning action to the job"
                signal_group(pgid, signal.Signals[warning["signal"]])
            if el.reason is None:
                if kill_marker(root, job_id, index).exists():
                    el.reason, el.kill_at = "TERM_OWNER", now + interval
                    signal_group(pgid, signal.SIGINT, signal.SIGTERM)
                elif requeue_marker(root, job_id, index).exists():  # killed as bkill does
                    el.reason, el.kill_at = "TERM_REQUEUE_OWNER", now + interval
                    signal_group(pgid, signal.SIGINT, signal.SIGTERM)
                elif job["runlimit"] is not None and now - el.started > job["runlimit"]:
                    el.reason, el.kill_at = "TERM_RUNLIMIT", now + interval
                    signal_group(pgid, signal.SIGUSR2)
                elif job["memlimit_kb"] and group_rss_kb(pgid) > job["memlimit_kb"]:
                    el.reason, el.kill_at = "TERM_MEMLIMIT", now + interval
                    signal_group(pgid, signal.SIGINT, signal.SIGTERM)
            elif now >= el.kill_at:
                signal_group(pgid, signal.SIGKILL)
        time.sleep(POLL)


# ---------------------------------------------------------------- bjobs
def parse_job_arg(arg: str) -> tuple[int, int | None]:
    m = re.fullmatch(r"(\d+)(?:\[(\d+)\])?", arg)
    if not m:
        raise ValueError(arg)
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None


def field_value(field: str, job: dict[str, Any], index: int, elem: dict[str, Any]) -> str:
    def when(t: float | None) -> str:
        return time.strftime("%b %d %H:%M", time.localtime(t)) if t else "-"

    values = {
        "jobid": str(job["id"]), "id": str(job["id"]),
        "jobindex": str(index),
        "stat": elem["stat"],
        "exit_code": "-" if elem["exit_code"] is None else str(elem["exit_code"]),
        "exit_reason": elem["exit_reason"] or "-",
        "job_name": f"{job['name']}[{index}]" if job["array"] else job["name"],
        "queue": job["queue"], "user": job["user"],
        "from_host": socket.gethostname(),
        "exec_host": socket.gethostname() if elem["start"] else "-",
        "submit_time": when(job["submit_time"]), "start_time": when(elem["start"]),
        "finish_time": when(elem["end"]),
    }
    values["name"] = values["job_name"]
    return values[field]


def parse_format(spec: str) -> tuple[list[tuple[str, int | None, bool]], str]:
    """``"jobid stat:8 exit_code:-5 delimiter='|'"`` -> [(field, width, right)], delimiter."""
    delimiter = " "
    m = re.search(r"delimiter='(.)'", spec)
    if m:
        delimiter = m.group(1)
        spec = spec[:m.start()] + spec[m.end():]
    fields = []
    for token in spec.split():
        name, _, width = token.partition(":")
        right = width.startswith("-")
        width = width.lstrip("-").split(":")[0]
        fields.append((name.lower(), int(width) if width else None, right))
    return fields, delimiter


def bjobs(argv: list[str]) -> int:
    root = state_dir()
    log_call(root, "bjobs", argv)
    show_all, noheader, wide, fmt, ids, name = False, False, False, None, [], None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-J":
            i += 1
            name = argv[i]
        elif arg == "-a":
            show_all = True
        elif arg == "-noheader":
            noheader = True
        elif arg == "-w":
            wide = True
        elif arg == "-o":
            i += 1
            fmt = argv[i]
        else:
            ids.append(arg)
        i += 1
    rc = 0
    selected: list[tuple[int, int | None]] = []
    for arg in ids:
        try:
            job_id, index = parse_job_arg(arg)
        except ValueError:
            sys.stderr.write(f"{arg}: Illegal job ID.\n")
            return 255
        if not state_path(root, job_id).exists() or (
                index is not None and str(index) not in read_json(state_path(root, job_id))
                ["elements"]):
            sys.stderr.write(f"Job <{arg}> is not found\n")
            rc = 255
            continue
        selected.append((job_id, index))
    if not ids:
        selected = [(job_id, None) for job_id in all_job_ids(root)]
    rows = []
    for job_id, only in selected:
        job = read_json(job_path(root, job_id))
        if name is not None and not re.fullmatch(re.escape(name).replace(r"\*", ".*"),
                                                 job["name"]):
            continue
        elems = read_json(state_path(root, job_id))["elements"]
        for key, elem in elems.items():
            if only is not None and int(key) != only:
                continue
            if show_all or elem["stat"] in UNFINISHED:
                rows.append((job, int(key), elem))
    if not rows:
        if rc == 0:
            sys.stderr.write("No job found\n" if show_all else "No unfinished job found\n")
        return rc
    if fmt is not None:
        try:
            fields, delim = parse_format(fmt)
            table = [[field_value(f, *row) for f, _, _ in fields] for row in rows]
        except KeyError as exc:
            sys.stderr.write(f"Invalid field name: {exc.args[0]}\n")
            return 255
        header = [f.upper() for f, _, _ in fields]
        lines = ([] if noheader else [header]) + table
        for line in lines:
            cells = []
            for (_, width, right), value in zip(fields, line, strict=True):
                if width is not None:
                    value = value[:width]
                    value = value.rjust(width) if right else value.ljust(width)
                cells.append(value)
            print(delim.join(cells).rstrip())
        return rc
    columns = [("JOBID", "jobid", 7), ("USER", "user", 7), ("STAT", "stat", 5),
               ("QUEUE", "queue", 10), ("FROM_HOST", "from_host", 11),
               ("EXEC_HOST", "exec_host", 11), ("JOB_NAME", "job_name", 10),
               ("SUBMIT_TIME", "submit_time", 12)]
    out = [] if noheader else [[title for title, _, _ in columns]]
    out += [[field_value(f, *row) for _, f, _ in columns] for row in rows]
    for line in out:
        cells = [v if wide else v[:w] for v, (_, _, w) in zip(line, columns, strict=True)]
        print(" ".join(c.ljust(w) for c, (_, _, w) in zip(cells, columns, strict=True)).rstrip())
    return rc


# ---------------------------------------------------------------- bkill
def live_elements(root: Path, arg: str, states: set[str],
                  not_live: str) -> tuple[int, list[str]] | None:
    """The job and element indices ``arg`` (``1234``, ``1234[3]``) names that are in
    ``states``; None, with the error written to stderr, when there are none."""
    try:
        job_id, index = parse_job_arg(arg)
    except ValueError:
        sys.stderr.write(f"{arg}: Illegal job ID.\n")
        return None
    if not state_path(root, job_id).exists():
        sys.stderr.write(f"Job <{arg}>: No matching job found\n")
        return None
    elems = read_json(state_path(root, job_id))["elements"]
    keys = [k for k in elems if index is None or int(k) == index]
    if not keys:
        sys.stderr.write(f"Job <{arg}>: No matching job found\n")
        return None
    live = [k for k in keys if elems[k]["stat"] in states]
    if not live:
        sys.stderr.write(f"Job <{arg}>: {not_live}\n")
        return None
    return job_id, live


def bkill(argv: list[str]) -> int:
    """``bkill [-s SIGNAL] job_ID ...``: end the jobs, or (``-s``) send them one signal."""
    root = state_dir()
    log_call(root, "bkill", argv)
    rc = 0
    sent = None
    if argv[:1] == ["-s"]:
        if len(argv) < 2:
            sys.stderr.write("-s: option requires an argument\n")
            return 255
        name = argv[1].upper()
        sent = name if name.startswith("SIG") else "SIG" + name
        if sent not in signal.Signals.__members__:
            sys.stderr.write(f"{argv[1]}: Illegal signal value\n")
            return 255
        argv = argv[2:]
    for arg in argv:
        found = live_elements(root, arg, UNFINISHED, "Job has already finished")
        if found is None:
            rc = 255
            continue
        job_id, live = found
        for k in live:
            if sent is None:
                kill_marker(root, job_id, int(k)).touch()
            else:
                signal_marker(root, job_id, int(k)).write_text(sent)
        print(f"Job <{arg}> is being {'terminated' if sent is None else 'signaled'}")
    return rc


# ---------------------------------------------------------------- brequeue
def brequeue(argv: list[str]) -> int:
    """``brequeue job_ID | "job_ID[index]" ...``: kill running elements and requeue them."""
    root = state_dir()
    log_call(root, "brequeue", argv)
    rc = 0
    for arg in argv:
        # "Kills a running (RUN), user-suspended (USUSP), or system-suspended (SSUSP) job"
        found = live_elements(root, arg, {"RUN", "USUSP", "SSUSP"}, "Job is not running")
        if found is None:
            rc = 255
            continue
        job_id, live = found
        for k in live:
            requeue_marker(root, job_id, int(k)).touch()
        print(f"Job <{arg}> is being requeued")
    return rc


# ---------------------------------------------------------------- bmod
def bmod(argv: list[str]) -> int:
    """Only ``bmod -J "%job_limit" job_ID``: change a job array's job slot limit."""
    root = state_dir()
    log_call(root, "bmod", argv)
    if len(argv) != 3 or argv[0] != "-J" or not re.fullmatch(r"%\d+", argv[1]):
        sys.stderr.write("LSF emulator: bmod supports only -J \"%job_limit\" job_ID\n")
        return 255
    try:
        job_id, index = parse_job_arg(argv[2])
    except ValueError:
        sys.stderr.write(f"{argv[2]}: Illegal job ID.\n")
        return 255
    if index is not None or not state_path(root, job_id).exists():
        sys.stderr.write(f"{argv[2]}: No matching job found\n")
        return 255
    write_json(slot_limit_path(root, job_id), int(argv[1][1:]))
    print(f"Parameters of job <{job_id}> are being changed")
    return 0


# ---------------------------------------------------------------- bparams
def bparams(argv: list[str]) -> int:
    root = state_dir()
    log_call(root, "bparams", argv)
    queue = os.environ.get("LSF_EMULATOR_DEFAULT_QUEUE", "normal")
    if "-a" not in argv and "-l" not in argv:
        print(f"Default Queues:  {queue}\nMBD_SLEEP_TIME used for calculations:  10 seconds\n"
              "Job Checking Interval:  7 seconds\nJob Accepting Interval:  0 seconds")
        return 0
    params = {"DEFAULT_QUEUE": queue, "MBD_SLEEP_TIME": "10", "SBD_SLEEP_TIME": "7",
              "JOB_ACCEPT_INTERVAL": "0",
              "JOB_TERMINATE_INTERVAL": os.environ.get("LSF_EMULATOR_TERMINATE_INTERVAL", "10"),
              "MAX_JOB_ARRAY_SIZE": os.environ.get("LSF_EMULATOR_MAX_ARRAY", "1000"),
              "MAX_JOB_NUM": "1000", "CLEAN_PERIOD": "3600"}
    print("System default queues for automatic queue selection:")
    print(f"    QUEUE_NAME:  {queue}\n")
    for key, value in params.items():
        print(f"    {key} = {value}")
    return 0


def main(tool: str, argv: list[str]) -> int:
    if tool == "run":
        run(Path(argv[0]), int(argv[1]))
        return 0
    return {"bsub": bsub, "bjobs": bjobs, "bkill": bkill, "bmod": bmod,
            "bparams": bparams, "brequeue": brequeue}[tool](argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
