"""Preloaded runs (issue 24): runs forked from a zygote that imported their code once.

Real searches through the CLI with a function objective whose module notes, at import, the
pid of the process that imported it (``IMPORTED_IN``): a run forked from a zygote sees the
zygote's pid there, a fresh process its own. The run contract itself (files, signals, restarts)
is checked by the tests of ``test_run_lifecycle.py``, ``test_core_resume.py`` and
``test_tracking_env.py``, which run once more with ``--preload``. Here: the default, the
flags, what a crash costs, and each rule that replaces a zygote or gives up on one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import pid_alive, run_hpsearch, start_hpsearch, wait_for
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

from hpsearch.runs.model import Run
from hpsearch.runs.preload import HELD, Forked, Here, PreloadOptions, ZygotePool

OBJECTIVE = '''\
import json, os, signal, time
IMPORTED_IN = os.getpid()
NVML_AT_IMPORT = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
VERSION = {version}

def fn(config):
    out = os.environ["HPSEARCH_OUT_DIR"]
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    with open(os.path.join(out, "info.json"), "w") as f:
        json.dump({{"imported_in": IMPORTED_IN, "pid": os.getpid(), "version": VERSION,
                   "comm": comm, "nvml_at_import": NVML_AT_IMPORT,
                   "nvml_in_run": os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")}}, f)
    while {wait} and not os.path.exists({go!r}):
        time.sleep(0.02)
    mode = config.get("mode", "ok")
    if mode == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "exit":
        os._exit(3)
    if mode == "killed":  # what the OOM killer does
        os.kill(os.getpid(), signal.SIGKILL)
    return {{"loss": config["x"]}}
'''

SEARCH = """\
script: obj.py:fn
metrics: [loss]
parameters:
  x: {xs}
  mode: {modes}
"""


def project(root: Path, xs: str = "[1, 2, 3]", modes: str = "[ok]", wait: bool = False,
            version: int = 1) -> Path:
    sim = root / "proj"
    sim.mkdir(exist_ok=True)
    write_objective(root, wait, version)
    (sim / "search.yaml").write_text(SEARCH.format(xs=xs, modes=modes))
    return sim


def write_objective(root: Path, wait: bool, version: int) -> None:
    (root / "proj" / "obj.py").write_text(
        OBJECTIVE.format(version=version, wait=wait, go=str(root / "GO")))


def args(root: Path, *extra: str) -> list[str]:
    """The flags of a local search of ``proj/`` (run in the test's folder) into
    ``<root>/out``."""
    return ["--search_file=proj/search.yaml", "--run_cwd=proj", f"--out_dir={root / 'out'}",
            "--visible_gpus=-1", *extra]


def infos(root: Path) -> list[dict[str, int]]:
    return [json.loads(p.read_text()) for p in sorted((root / "out").glob("runs/*/out/info.json"))
            if p.read_text().endswith("}")]


def run_records(root: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((root / "out").glob("runs/*/run.json"))]


def results(root: Path) -> list[dict[str, str]]:
    import csv

    with open(root / "out" / "search_results.csv", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def test_function_objectives_are_forked_from_one_zygote_by_default(tmp_path):
    project(tmp_path, xs="[1, 2, 3, 4]")
    rc, _, err = run_hpsearch(args(tmp_path, "--num_jobs=2"), tmp_path)
    assert rc == 0, err
    seen = infos(tmp_path)
    assert len(seen) == 4
    zygotes = {info["imported_in"] for info in seen}
    assert len(zygotes) == 1 and not zygotes & {info["pid"] for info in seen}, seen
    assert all(record["preloaded"] is True for record in run_records(tmp_path))
    assert {row["preloaded"] for row in results(tmp_path)} == {"1"}
    # imported with PyTorch's fork-safe CUDA check; the run's environment is its own; the
    # run is no wrapper to a restarted driver (only its wrapper is named hpsearch-run)
    assert {(i["nvml_at_import"], i["nvml_in_run"], i["comm"]) for i in seen} == {
        ("1", None, Path(sys.executable).name[:15])}, seen
    rc, out, err = run_hpsearch(["status", str(tmp_path / "out")], tmp_path)
    assert rc == 0 and "preloaded: 4 of 4 runs" in out, out + err


def test_no_preload_starts_each_run_as_a_process_of_its_own(tmp_path):
    project(tmp_path)
    rc, _, err = run_hpsearch(args(tmp_path, "--no_preload"), tmp_path)
    assert rc == 0, err
    seen = infos(tmp_path)
    assert len(seen) == 3 and all(info["imported_in"] == info["pid"] for info in seen), seen
    assert not any("preloaded" in record for record in run_records(tmp_path))
    rc, out, _ = run_hpsearch(["status", str(tmp_path / "out")], tmp_path)
    assert rc == 0 and "preloaded" not in out


def test_preload_and_no_preload_together_are_refused_in_one_line(tmp_path):
    project(tmp_path)
    rc, out, err = run_hpsearch(args(tmp_path, "--preload", "--no_preload"), tmp_path)
    assert rc == 2 and err.startswith("hpsearch: error: ") and len(err.splitlines()) == 1, err
    assert "--preload" in err and "--no_preload" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_run_that_crashes_costs_that_run_only(tmp_path):
    project(tmp_path, xs="[1]", modes="[ok, segv, exit, killed]")
    rc, _, err = run_hpsearch(args(tmp_path, "--num_jobs=2", "--deterministic_search"),
                              tmp_path)
    assert rc == 1, err
    status = {}
    for row in results(tmp_path):
        exit_code = (Path(row["run_dir"]) / "exit_code").read_text().split()[0]
        status[row["mode"]] = (row["status"], exit_code)
    assert status == {"ok": ("finished", "0"), "segv": ("failed", "139"),
                      "exit": ("failed", "3"), "killed": ("failed", "137")}, status
    seen = infos(tmp_path)
    assert len(seen) == 4 and len({info["imported_in"] for info in seen}) == 1, seen
    assert all(record["preloaded"] is True for record in run_records(tmp_path))


def test_a_zygote_whose_imports_initialised_cuda_is_not_used_said_in_one_line(tmp_path):
    """A fake ``torch`` (just ``torch.cuda.is_initialized()``, PyTorch's own call, answering
    True: no GPU here) on the sim's path, imported by the objective's module."""
    project(tmp_path)
    fake = tmp_path / "proj" / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "class cuda:\n    @staticmethod\n    def is_initialized():\n        return True\n")
    obj = tmp_path / "proj" / "obj.py"
    obj.write_text("import torch\n" + obj.read_text())
    rc, _, err = run_hpsearch(args(tmp_path, "--num_jobs=2"), tmp_path)
    assert rc == 0, err
    said = [line for line in err.splitlines() if "not preloading" in line]
    assert len(said) == 1 and "CUDA" in said[0] and "obj.py:fn" in said[0], err
    seen = infos(tmp_path)
    assert len(seen) == 3 and all(info["imported_in"] == info["pid"] for info in seen), seen
    assert not any("preloaded" in record for record in run_records(tmp_path))


EXITS = '''\
import atexit, os, sys, threading, time

def fn(config):
    global unclosed
    out = os.environ["HPSEARCH_OUT_DIR"]
    known = "tabnanny" in sys.modules  # imported by an earlier run: learned by the zygote
    import tabnanny  # noqa: F401
    unclosed = open(os.path.join(out, "unclosed.txt"), "w")
    unclosed.write(f"written, never closed; tabnanny known: {known}")
    atexit.register(lambda: open(os.path.join(out, "atexit.txt"), "w").write("ran"))
    def late():
        time.sleep(0.3)
        open(os.path.join(out, "thread.txt"), "w").write("joined")
    threading.Thread(target=late).start()
    print("printed, not flushed", end="")
    return {"loss": config["x"]}
'''


def test_a_forked_run_ends_as_python_ends_and_its_imports_are_learned(tmp_path):
    """A run's non-daemon threads are joined, its atexit handlers run, its open files and
    stdout are flushed (the interpreter's teardown of every module is what a fork skips);
    what one run imported inside the function, the next runs find imported already."""
    project(tmp_path, xs="[1, 2, 3]")
    (tmp_path / "proj" / "obj.py").write_text(EXITS)
    rc, _, err = run_hpsearch(args(tmp_path, "--num_jobs=1", "--deterministic_search"),
                              tmp_path)
    assert rc == 0, err
    known = []
    for row in sorted(results(tmp_path), key=lambda row: int(row["trial"])):
        run_dir = Path(row["run_dir"])
        assert (run_dir / "out" / "atexit.txt").read_text() == "ran"
        assert (run_dir / "out" / "thread.txt").read_text() == "joined"
        assert (run_dir / "stdout.log").read_text() == "printed, not flushed"
        text = (run_dir / "out" / "unclosed.txt").read_text()
        assert text.startswith("written, never closed")
        known.append(text.endswith("True"))
    assert known == [False, True, True], known
    assert all(record["preloaded"] is True for record in run_records(tmp_path))


SLOW_LESSON = """\
import os, time
with open({log!r}, "a") as f:
    f.write("start\\n")
time.sleep(3)
with open({log!r}, "a") as f:
    f.write("end\\n")
"""

LEARNS_SLOWLY = """\
import sys
sys.path.append({lib!r})  # outside the user's folders: the zygote learns what it holds

def fn(config):
    import slowlesson  # noqa: F401
    return {{"loss": config["x"]}}
"""


def reads_of(pid: int) -> int:
    """The read calls process ``pid`` made so far (``syscr`` of ``/proc/<pid>/io``)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise AssertionError("no syscr in /proc/<pid>/io")


def test_the_driver_sleeps_while_its_zygote_learns_its_runs_imports(tmp_path, procs):
    """A forked run's end comes in its zygote's word, which a zygote importing what its runs
    imported (a module taking 3 s here) gives only after: meanwhile the driver sleeps on the
    zygote's output (a few reads, as ``/proc/<pid>/io`` counts them), instead of looping on
    the ended wrapper's pidfd (thousands)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    log = tmp_path / "lesson.log"
    (lib / "slowlesson.py").write_text(SLOW_LESSON.format(log=str(log)))
    project(tmp_path, xs="[1, 2]")
    (tmp_path / "proj" / "obj.py").write_text(LEARNS_SLOWLY.format(lib=str(lib)))
    driver = start_hpsearch(args(tmp_path, "--num_jobs=1"), tmp_path)
    procs.append(driver)

    def said(word: str) -> int:
        return log.read_text().split().count(word) if log.exists() else 0

    # the first run imports it (start, end), then its zygote learns it (start, end)
    wait_for(lambda: said("start") == 2, timeout=120, what="the zygote learning")
    before = reads_of(driver.pid)
    wait_for(lambda: said("end") == 2, timeout=120, what="the lesson learned")
    during = reads_of(driver.pid) - before
    assert driver.wait(timeout=120) == 0, driver.communicate()
    assert during < 300, during
    assert all(record["preloaded"] is True for record in run_records(tmp_path))


IMPORTING = """\
import os, time
with open({log!r}, "a") as f:
    f.write(f"start {{os.getpid()}}\\n")
time.sleep(0.5)
import lessoninner  # noqa: E402,F401  (an import the run makes while this one is going)
"""

WAITS_AFTER_IMPORTING = """\
import os, sys, time
sys.path.append({lib!r})  # outside the user's folders: the zygote learns what it holds

def fn(config):
    import lessonouter  # noqa: F401
    while not os.path.exists({go!r}):
        time.sleep(0.02)
    return {{"loss": config["x"]}}
"""


def test_a_zygote_learns_a_runs_imports_while_the_run_goes_on(tmp_path, procs):
    """The modules a run imports reach its zygote while the run still runs (a lesson at an
    import, after the first): the zygote imports them beside it, not after its end -- here
    while the first run waits for a file; the next run finds them imported."""
    lib = tmp_path / "lib"
    lib.mkdir()
    log = tmp_path / "imports.log"
    (lib / "lessonouter.py").write_text(IMPORTING.format(log=str(log)))
    (lib / "lessoninner.py").write_text("")
    project(tmp_path, xs="[1, 2]")
    (tmp_path / "proj" / "obj.py").write_text(
        WAITS_AFTER_IMPORTING.format(lib=str(lib), go=str(tmp_path / "GO")))
    driver = start_hpsearch(args(tmp_path, "--num_jobs=1"), tmp_path)
    procs.append(driver)

    def importers() -> list[str]:
        return log.read_text().split()[1::2] if log.exists() else []

    # the first run imports it, then its zygote -- while the run waits for GO
    wait_for(lambda: len(set(importers())) == 2, timeout=60, what="the zygote learning")
    (tmp_path / "GO").write_text("")
    assert driver.wait(timeout=120) == 0, driver.communicate()
    assert len(importers()) == 2, importers()  # the second run found it imported
    assert all(record["preloaded"] is True for record in run_records(tmp_path))


def test_ctrl_c_while_the_first_zygote_imports_stops_the_search_at_once(tmp_path, procs):
    """The runs wait for their zygote's imports (ten minutes here) without the driver's loop
    waiting: SIGINT stops it as usual, and the zygote ends with it."""
    project(tmp_path)
    obj = tmp_path / "proj" / "obj.py"
    obj.write_text(f"import os, time\nopen({str(tmp_path / 'zygote')!r}, 'w').write("
                   "str(os.getpid()))\ntime.sleep(600)\n" + obj.read_text())
    driver = start_hpsearch(args(tmp_path, "--num_jobs=2"), tmp_path)
    procs.append(driver)
    marker = tmp_path / "zygote"
    wait_for(lambda: marker.exists() and marker.read_text(), timeout=60, what="the import")
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=60) == 130, driver.communicate()
    wait_for(lambda: not pid_alive(int(marker.read_text())), what="the zygote gone")
    assert not list((tmp_path / "out").glob("runs/*/started_at"))


def one_at_a_time(tmp_path: Path, procs: list) -> None:
    """Start the waiting search one run at a time; return once the first run waits."""
    project(tmp_path, wait=True)
    procs.append(start_hpsearch(args(tmp_path, "--num_jobs=1"), tmp_path))
    wait_for(lambda: len(infos(tmp_path)) == 1, timeout=60, what="the first run")


def finish(tmp_path: Path, procs: list) -> list[dict[str, int]]:
    (tmp_path / "GO").write_text("")
    assert procs[-1].wait(timeout=120) == 0, procs[-1].communicate()
    assert {row["status"] for row in results(tmp_path)} == {"finished"}
    assert all(record["preloaded"] is True for record in run_records(tmp_path))
    seen = infos(tmp_path)
    assert len(seen) == 3
    return seen


def test_a_changed_module_file_is_imported_again(tmp_path, procs):
    one_at_a_time(tmp_path, procs)
    (first,) = infos(tmp_path)
    write_objective(tmp_path, wait=True, version=22)
    seen = finish(tmp_path, procs)
    assert sorted(info["version"] for info in seen) == [1, 22, 22], seen
    later = {info["imported_in"] for info in seen if info["version"] == 22}
    assert len(later) == 1 and first["imported_in"] not in later


def test_a_dead_zygote_is_replaced_and_its_running_run_still_counts(tmp_path, procs):
    one_at_a_time(tmp_path, procs)
    (first,) = infos(tmp_path)
    os.kill(first["imported_in"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(first["imported_in"]), what="the zygote gone")
    seen = finish(tmp_path, procs)
    later = {info["imported_in"] for info in seen} - {first["imported_in"]}
    assert len(later) == 1, seen


def test_killing_the_driver_ends_its_zygote_and_its_runs_are_adopted(tmp_path, procs):
    project(tmp_path, xs="[1, 2]", wait=True)
    driver = start_hpsearch(args(tmp_path, "--num_jobs=2"), tmp_path)
    procs.append(driver)
    wait_for(lambda: len(infos(tmp_path)) == 2, timeout=60, what="both runs")
    zygote = infos(tmp_path)[0]["imported_in"]
    assert pid_alive(zygote)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    wait_for(lambda: not pid_alive(zygote), what="the zygote gone with its driver")
    runs = [info["pid"] for info in infos(tmp_path)]
    assert all(pid_alive(pid) for pid in runs)  # runs outlive their driver, as always
    resumed = start_hpsearch(args(tmp_path, "--num_jobs=2"), tmp_path)
    procs.append(resumed)
    time.sleep(0.5)
    (tmp_path / "GO").write_text("")
    assert resumed.wait(timeout=120) == 0, resumed.communicate()
    assert [info["pid"] for info in infos(tmp_path)] == runs  # adopted, not run again
    assert {row["status"] for row in results(tmp_path)} == {"finished"}


def test_a_script_opts_in_and_its_main_runs_in_the_fork(tmp_path):
    sim = tmp_path / "proj"
    sim.mkdir()
    (sim / "train.py").write_text(
        "import json, os, sys\nIMPORTED_IN = os.getpid()\n"
        "if __name__ == '__main__':\n"
        "    cfg = dict(a[2:].split('=', 1) for a in sys.argv[1:])\n"
        "    os.makedirs(cfg['out_dir'], exist_ok=True)\n"
        "    with open(os.path.join(cfg['out_dir'], 'perf.txt'), 'w') as f:\n"
        "        f.write(f\"loss {cfg['x']}\\nfinished 1\\n\")\n")
    (sim / "search.yaml").write_text(
        "script: train.py\nsummary_file: perf.txt\nmetrics: [loss]\nparameters:\n  x: [1, 2]\n")
    rc, _, err = run_hpsearch(args(tmp_path, "--preload"), tmp_path)
    assert rc == 0, err
    assert sorted(row["loss"] for row in results(tmp_path)) == ["1", "2"]
    assert all(record["preloaded"] is True for record in run_records(tmp_path))

    def preloaded_in(out: str, *extra: str) -> list[bool]:
        rc, _, err = run_hpsearch(args(tmp_path / out, *extra), tmp_path)
        assert rc == 0, err
        return [bool(record.get("preloaded")) for record in run_records(tmp_path / out)]

    assert preloaded_in("plain") == [False, False]  # a script: only when asked
    search = sim / "search.yaml"
    search.write_text(search.read_text() + "preload: true\n")
    assert preloaded_in("by_file") == [True, True]
    assert preloaded_in("flag_wins", "--no_preload") == [False, False]
    search.write_text(search.read_text().replace("preload: true", "preload: yes please"))
    rc, _, err = run_hpsearch(args(tmp_path / "bad"), tmp_path)
    assert rc == 2 and "preload must be true or false" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad" / "out").exists()


def test_packed_workers_fork_their_runs_from_one_zygote_each(tmp_path, lsf):  # noqa: F811
    """Packed jobs on the LSF emulator (LSF speaks its documented formats there)."""
    project(tmp_path, xs="[1, 2, 3, 4, 5, 6]")
    rc, _, err = run_hpsearch(args(tmp_path, "--run_cluster", "--scheduler=lsf", "--resources=",
                                   "--runs_per_job=3", "--num_jobs=2"), tmp_path, timeout=120)
    assert rc == 0, err
    rows = results(tmp_path)
    assert len(rows) == 6 and {row["status"] for row in rows} == {"finished"}, rows
    assert all(record["preloaded"] is True for record in run_records(tmp_path))
    zygote_of_job: dict[str, set[int]] = {}
    for row in rows:
        info = json.loads((Path(row["run_dir"]) / "out" / "info.json").read_text())
        assert info["imported_in"] != info["pid"]
        zygote_of_job.setdefault(row["job_id"], set()).add(info["imported_in"])
    assert all(len(zygotes) == 1 for zygotes in zygote_of_job.values()), zygote_of_job
    assert len(zygote_of_job) <= 2


# -- the pool's own rules, with limits small enough for a test ----------------------------------
def pool_run(root: Path, n: int) -> Run:
    """A run of the objective, its directory prepared as the driver prepares one."""
    run_dir = root / "out" / "runs" / f"r{n}"
    (run_dir / "out").mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"config": {"x": n}, "launch": f"k{n}"}) + "\n")
    argv = (sys.executable, "-m", "hpsearch.objective_runner", "obj.py:fn", "perf.txt",
            f"--out_dir={run_dir / 'out'}")
    return Run(run_id=f"r{n}", trial=n, config={"x": n}, argv=argv, cwd=root / "proj",
               run_dir=run_dir, sim_out_dir=run_dir / "out", launch=f"k{n}")


def zygotes_of_runs(root: Path, pool: ZygotePool, numbers: range) -> list[int]:
    """Run runs ``numbers`` one after the other; the zygote each one came from."""
    zygotes = []
    for n in numbers:
        run = pool_run(root, n)
        forked = pool.spawn(run, {"HPSEARCH_OUT_DIR": str(run.sim_out_dir)}, "host", "",
                            hold=True)
        while forked is HELD:  # as the backend does: no room while its zygote imports
            wait_for(lambda: not pool.busy(False), what="the zygote's imports")
            forked = pool.spawn(run, {"HPSEARCH_OUT_DIR": str(run.sim_out_dir)}, "host", "",
                                hold=True)
        assert isinstance(forked, Forked)
        assert forked.wait() == 0
        assert (run.run_dir / "exit_code").read_text() == f"0 k{n}\n"
        zygotes.append(json.loads((run.sim_out_dir / "info.json").read_text())["imported_in"])
        time.sleep(0.05)
    return zygotes


def test_a_zygote_is_replaced_after_n_runs(tmp_path):
    """The backend's pool driven directly: its default (1000 runs) is too many for a test."""
    project(tmp_path)
    pool = ZygotePool(PreloadOptions(), max_runs=2)
    try:
        zygotes = zygotes_of_runs(tmp_path, pool, range(12))
    finally:
        pool.close()
    assert zygotes[0] == zygotes[1] and len(set(zygotes)) >= 2, zygotes
    assert all(zygotes.count(z) >= 2 for z in set(zygotes[:-2])), zygotes


def test_a_zygote_that_grew_is_replaced(tmp_path):
    """The backend's pool driven directly, with a 20 MiB limit: the module starts a thread
    that takes 60 MiB a moment after the import (the default limit, 256 MiB, is too much
    memory for a test)."""
    project(tmp_path)
    obj = tmp_path / "proj" / "obj.py"
    obj.write_text(obj.read_text() + (
        "import threading\n_held = []\n"
        "threading.Timer(0.3, lambda: _held.append(bytearray(60 << 20))).start()\n"))
    pool = ZygotePool(PreloadOptions(), max_growth_mib=20)
    try:
        first = zygotes_of_runs(tmp_path, pool, range(1))
        time.sleep(1.0)  # the module's thread took its memory
        zygotes = first + zygotes_of_runs(tmp_path, pool, range(1, 20))
    finally:
        pool.close()
    assert len(set(zygotes)) >= 2, zygotes


#: a generator (``algorithm: external``) whose first point waits, at most 20 s, until the
#: objective's module has been imported by some process; it records whether it saw that
WAITS_FOR_THE_IMPORT = '''\
import json, os, sys, time
marker, record, out = sys.argv[1:4]
give_up = time.monotonic() + 20
while not os.path.exists(marker) and time.monotonic() < give_up:
    time.sleep(0.02)
with open(record, "a") as f:
    f.write(f"{os.path.exists(marker)}\\n")
with open(out, "w") as f:
    json.dump([] if os.path.getsize(record) > 6 else [{"x": 1}], f)
'''


def test_the_zygote_imports_before_the_first_point_is_proposed(tmp_path):
    """The driver starts the runs' zygote as it starts (``Backend.prepare``), so the
    objective's module is imported while the strategy makes its first point, not after it:
    the generator of the first point finds the import done."""
    proj = tmp_path / "proj"
    proj.mkdir()
    marker, record = tmp_path / "imported", tmp_path / "saw_import"
    (proj / "obj.py").write_text(f"open({str(marker)!r}, 'w').close()\n\n"
                                 "def fn(config):\n    return {'loss': config['x']}\n")
    (proj / "gen.py").write_text(WAITS_FOR_THE_IMPORT)
    (proj / "search.yaml").write_text(
        "script: obj.py:fn\nmetrics: [loss]\nalgorithm: external\n"
        f"generator: {sys.executable} gen.py {marker} {record} %OUT\nnum_trials: 1\n"
        "parameters:\n  x: [1, 2]\n")
    rc, _, err = run_hpsearch(args(tmp_path), tmp_path, timeout=120)
    assert rc == 0, err
    assert record.read_text().splitlines()[0] == "True", record.read_text()
    assert [r["status"] for r in results(tmp_path)] == ["finished"]


class Chatty(Here):
    """Zygotes started behind a shell that prints a banner and a stray JSON value first, as a
    host's login files may (``echo Welcome`` in a ``.bashrc``) before ssh runs the zygote."""

    def start(self, python: str, cwd: str, kind: str, target: str
              ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["/bin/sh", "-c", 'echo "Welcome to $0"; echo 42; exec "$@"', "gpu1", python, "-m",
             "hpsearch.runs.zygote", str(os.getpid()), kind, target], cwd=cwd,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)


def test_what_is_printed_before_a_zygote_s_words_is_not_taken_for_them(tmp_path):
    """The backend's pool driven directly, its zygote behind a shell that prints lines that
    are not its words: they are passed over, and its runs fork from it."""
    project(tmp_path)
    pool = ZygotePool(PreloadOptions(), where=Chatty())
    try:
        zygotes = zygotes_of_runs(tmp_path, pool, range(3))
    finally:
        pool.close()
    assert len(set(zygotes)) == 1, zygotes
