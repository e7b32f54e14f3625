"""Preloaded runs on SSH hosts (issue 24): each host's runs fork from a zygote on that host.

Real searches through ``python -m hpsearch --hosts ...`` against the real sshd hosts of
scripts/ssh/start.sh (all of them this machine, so a test reads their processes in ``/proc``).
The function objective's module notes, at import, the pid that imported it and the host it was
imported on (``HPSEARCH_SSH_TEST_HOST``, which each test host's sshd sets); each run notes its
own pid, its wrapper's parent (the zygote it was forked from) and what its environment holds.
The contract of a preloaded run on a host (a host that dies, a killed driver, a timeout, a
run killed there, cancel) is checked by ``test_ssh_search.py``'s tests, which run once more
with ``--preload``.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from ssh_fixture import STATE, SshHosts, ssh_hosts  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("ssh_hosts")
HOSTS = SshHosts(STATE / "ssh_config")

OBJECTIVE = '''\
import json, os, signal
with open({imports!r}, "a") as f:
    f.write(json.dumps({{"pid": os.getpid(),
                        "host": os.environ.get("HPSEARCH_SSH_TEST_HOST")}}) + "\\n")

def fn(config):
    with open("/proc/%d/stat" % os.getppid()) as f:
        zygote = int(f.read().rsplit(")", 1)[1].split()[1])  # the wrapper's parent
    with open(os.path.join(os.environ["HPSEARCH_OUT_DIR"], "info.json"), "w") as f:
        json.dump({{"pid": os.getpid(), "zygote": zygote,
                   "host": os.environ.get("HPSEARCH_SSH_TEST_HOST"),
                   "driver_only": os.environ.get("DRIVER_ONLY")}}, f)
    if config["x"] == 5:
        os.kill(os.getpid(), signal.SIGSEGV)
    return {{"loss": config["x"]}}
'''

SEARCH = """\
script: obj.py:fn
metrics: [loss]
parameters:
  x: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
"""


def hpsearch(args: list[str], cwd: Path, env: dict[str, str]
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpsearch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, check=False)


def results(out_dir: Path) -> list[dict[str, str]]:
    with open(out_dir / "search_results.csv", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


@pytest.mark.parametrize("flags", [[], ["--no_preload"]], ids=["default", "no_preload"])
def test_a_function_objective_s_runs_fork_from_one_zygote_on_each_host(tmp_path, flags):
    """12 runs over gpu1..gpu3 (two slots each), one of which segfaults. By default each host
    imports the module once, and each run is a fork of the process that imported it on its
    own host (its wrapper's parent); its environment is the host's (the sshd's variable is
    there, the driver's own is not), as a run started fresh gets it. The segfault costs that
    run only. ``run.json`` and ``hpsearch status`` say the runs were preloaded. With
    ``--no_preload`` every run imports the module itself."""
    proj = tmp_path / "proj"
    proj.mkdir()
    imports = tmp_path / "imports.jsonl"
    (proj / "obj.py").write_text(OBJECTIVE.format(imports=str(imports)))
    (proj / "search.yaml").write_text(SEARCH)
    (tmp_path / "hosts.yaml").write_text(
        "hosts:\n" + "".join(f"  {h}: {{slots: 2}}\n" for h in HOSTS.names))
    out = tmp_path / "out"
    env = {**HOSTS.env(), "DRIVER_ONLY": "1"}
    done = hpsearch(["--search_file=proj/search.yaml", "--run_cwd=proj", f"--out_dir={out}",
                     f"--hosts_file={tmp_path / 'hosts.yaml'}", "--visible_gpus=-1", *flags],
                    tmp_path, env)
    assert done.returncode == 1 and "1 run(s) failed" in done.stderr, done.stderr
    rows = {int(r["x"]): r for r in results(out)}
    assert {x: r["status"] for x, r in rows.items()} == {
        x: "failed" if x == 5 else "finished" for x in range(1, 13)}, rows
    imported = [json.loads(line) for line in imports.read_text().splitlines()]
    runs = {x: json.loads((Path(r["run_dir"]) / "out" / "info.json").read_text())
            for x, r in rows.items()}
    for x, info in runs.items():
        assert info["host"] == rows[x]["job_id"].split(":")[0], (x, info)
        assert info["driver_only"] is None, info
    preloaded = [json.loads((Path(r["run_dir"]) / "run.json").read_text()).get("preloaded")
                 for r in rows.values()]
    status = hpsearch(["status", str(out)], tmp_path, env)
    if flags:
        assert sorted(i["pid"] for i in imported) == sorted(i["pid"] for i in runs.values())
        assert not any(preloaded) and "preloaded:" not in status.stdout
        return
    zygote_of = {i["host"]: i["pid"] for i in imported}
    assert len(imported) == len(zygote_of) == 3, imported  # each host imported it once
    assert all(info["zygote"] == zygote_of[info["host"]] for info in runs.values()), runs
    assert all(preloaded), preloaded
    assert "preloaded: 12 of 12 runs" in status.stdout, status.stdout


def test_a_host_whose_python_cannot_preload_says_so_once_and_its_runs_start_fresh(tmp_path):
    """``--preload`` of a script on gpu1, whose hosts-file ``python`` is the system's
    (``/usr/bin/python3``, without hpsearch: its zygote cannot start), and gpu2 (the
    search's): one line names the script, gpu1 and Python's own words; gpu1's runs start as
    fresh processes and gpu2's are forked; every run finishes."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "sim.py").write_text(
        "import argparse, os\np = argparse.ArgumentParser()\np.add_argument('--x')\n"
        "p.add_argument('--out_dir')\na = p.parse_args()\nos.makedirs(a.out_dir, "
        "exist_ok=True)\nopen(os.path.join(a.out_dir, 'perf.txt'), 'w').write("
        "f'acc {a.x}\\nfinished 1\\n')\n")
    (proj / "hpconf.py").write_text(
        'grid = {"x": list(range(8))}\nconditions = []\n_SCRIPT_NAME = "sim.py"\n'
        '_SUMMARY_FILENAME = "perf.txt"\n_SUMMARY_KEYWORDS = ["acc", "finished"]\n'
        '_PERFORMANCE_KEY = "acc"\n')
    (tmp_path / "hosts.yaml").write_text(
        "hosts:\n  gpu1: {slots: 2, python: /usr/bin/python3}\n  gpu2: {slots: 2}\n")
    out = tmp_path / "out"
    done = hpsearch(["--grid_module=hpconf", f"--run_cwd={proj}", f"--out_dir={out}",
                     f"--hosts_file={tmp_path / 'hosts.yaml'}", "--visible_gpus=-1",
                     "--preload"], tmp_path, HOSTS.env())
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "not preloading" in line]
    assert len(said) == 1 and "sim.py on gpu1" in said[0], done.stderr
    assert "No module named 'hpsearch'" in said[0], said
    rows = results(out)
    assert len(rows) == 8 and {r["status"] for r in rows} == {"finished"}, rows
    for row in rows:
        record = json.loads((Path(row["run_dir"]) / "run.json").read_text())
        assert bool(record.get("preloaded")) == row["job_id"].startswith("gpu2:"), row
    assert {r["job_id"].split(":")[0] for r in rows} == {"gpu1", "gpu2"}

