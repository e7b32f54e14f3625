"""Benchmark a search on SSH hosts (issue 22): 200 runs of 0.1 s over 3 hosts x 2 slots.

Needs the loopback hosts of ``scripts/ssh/start.sh`` (one sshd each on 127.0.0.2-4, run as
root; this script starts them if they are not up)::

    python scripts/bench/bench_ssh.py          # target: makespan / ideal <= 1.15
    python scripts/bench/bench_ssh.py --local  # the baseline: the same runs on 6 local slots

Each run is a Python sim that sleeps ``--seconds`` and writes its summary. ``ssh`` is a
counting shim first on PATH (it logs the kind and host of each command, then runs the real
client), so every ssh command the driver runs is counted: probes (``hpsearch-probe``: one
background sampler per host, every 0.5 s, so never more than one per host per poll of the
driver, which polls every 10 ms while runs go), starts through ssh commands
(``hpsearch-start``: only for a run whose words hold a newline) and the rest (the start check's
token reads, each host's agent shell, which starts every other run without an ssh command).

Printed: ``makespan`` (first run's ``started_at`` to the last ``exit_code``), ``ideal`` (the
runs' own durations, ``started_at`` to ``exit_code``, summed over the 6 slots: no schedule is
shorter), their ratio, ``wall`` (the whole ``python -m hpsearch`` process, the start check
included), the ssh commands by kind and per host, probes per host per second and ssh commands
per run. The machine's load moves these figures: compare with ``--local`` run just before or
after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import HPSEARCH

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("HPSEARCH_SSH_STATE", "/var/lib/hpsearch-ssh"))
HOSTS = ("gpu1", "gpu2", "gpu3")

SIM = '''import os, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
time.sleep({seconds})
os.makedirs(args["out_dir"], exist_ok=True)
with open(os.path.join(args["out_dir"], "perf.txt"), "w") as f:
    f.write("acc " + args["i"] + "\\nfinished 1\\n")
'''
GRID = '''grid = {{"i": list(range({runs}))}}
conditions = []
_SCRIPT_NAME = "sim.py"
_SUMMARY_FILENAME = "perf.txt"
_SUMMARY_KEYWORDS = ["acc", "finished"]
_PERFORMANCE_KEY = "acc"
'''
SHIM = '''#!/bin/sh
# log "<kind> <host>" (the word after --), then run the real client
after= host=
for word in "$@"; do
    [ -z "$after" ] || [ -n "$host" ] || host=$word
    [ "$word" != -- ] || after=1
done
case "$*" in
    *hpsearch-probe*) kind=probe ;;
    *hpsearch-start*) kind=start ;;
    *) kind=other ;;
esac
printf '%s %s\\n' "$kind" "$host" >> {log}
exec {ssh} "$@"
'''


def bench(args: argparse.Namespace, folder: Path) -> dict:
    proj = folder / "proj"
    proj.mkdir()
    (proj / "sim.py").write_text(SIM.format(seconds=args.seconds))
    (proj / "hpconf.py").write_text(GRID.format(runs=args.runs))
    hosts = folder / "hosts.yaml"
    hosts.write_text("hosts:\n" + "".join(f"  {h}: {{slots: {args.slots}}}\n" for h in HOSTS))
    shim_dir, log = folder / "bin", folder / "ssh.log"
    shim_dir.mkdir()
    real_ssh = shutil.which("ssh")
    assert real_ssh is not None, "ssh is not on PATH"
    (shim_dir / "ssh").write_text(SHIM.format(log=log, ssh=real_ssh))
    (shim_dir / "ssh").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}",
           "HPSEARCH_SSH_CONFIG": str(STATE / "ssh_config")}
    out = folder / "search"
    where = ([f"--num_jobs={len(HOSTS) * args.slots}"] if args.local
             else [f"--hosts_file={hosts}"])
    command = [*HPSEARCH, "--grid_module=hpconf", f"--run_cwd={proj}", f"--out_dir={out}",
               *where, "--visible_gpus=-1", "--deterministic_search"]
    begin = time.monotonic()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.monotonic() - begin
    if done.returncode != 0:
        sys.exit(f"the search failed ({done.returncode}):\n{done.stderr}")
    spans = []
    for run_dir in (out / "runs").iterdir():
        spans.append(((run_dir / "started_at").stat().st_mtime,
                      (run_dir / "exit_code").stat().st_mtime))
    makespan = max(e for _, e in spans) - min(s for s, _ in spans)
    ideal = sum(e - s for s, e in spans) / (len(HOSTS) * args.slots)
    kinds: dict[str, int] = {}
    log.touch()
    probes_per_host: dict[str, int] = {}
    for line in log.read_text().splitlines():
        kind, _, host = line.partition(" ")
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "probe":
            probes_per_host[host] = probes_per_host.get(host, 0) + 1
    return {"runs": len(spans), "makespan_s": round(makespan, 3), "ideal_s": round(ideal, 3),
            "ratio": round(makespan / ideal, 3), "wall_s": round(wall, 3),
            "ssh_commands": kinds, "probes_per_host": probes_per_host,
            "probes_per_host_per_s": round(max(probes_per_host.values(), default=0) / wall, 2),
            "ssh_commands_per_run": round(sum(kinds.values()) / len(spans), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.1)
    parser.add_argument("--slots", type=int, default=2, help="slots per host")
    parser.add_argument("--local", action="store_true",
                        help="the baseline: the same runs on as many local CPU slots")
    args = parser.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "ssh" / "start.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        print(json.dumps(bench(args, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
