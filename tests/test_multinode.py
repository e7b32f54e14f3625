"""Multi-node runs, launchers (issue 22, item 2): ``launcher: torchrun`` starts a run's command
through torch's elastic launcher -- on one node with ``--standalone``, on K nodes of a Slurm job
through one ``srun`` with a c10d rendezvous on the job's first node, on K SSH hosts with one
detached wrapper per host -- and what no backend here can start is refused in one line before
anything runs.

Real parts: the CLI, the driver, torch (CPU) training a tiny DDP model over gloo, one process
per GPU, the real local Slurm (``scripts/slurm/start.sh``: one node with two fake GPUs, so a
2-GPU job's run is two DDP processes) and its ``scontrol``. Fakes, because no GPU can run
here: locally ``tests/fakes/nvidia-smi`` (the real tool's CSV, ``HPSEARCH_NO_NVML=1``) shows
two GPUs, so a 2-GPU run gets ``--nproc_per_node=2``; torch itself runs on the CPU. The local
Slurm has one node, so a 2-node job is checked as the script sbatch would get (its exact
lines, and its rendezvous function run with the real ``scontrol``), not run. A 2-node run does
run across two real sshd hosts (``scripts/ssh/start.sh``: one sshd per loopback address, see
``tests/ssh_fixture.py``), torch's c10d rendezvous and gloo over TCP between them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (  # noqa: F401  (procs: fixture)
    pid_alive,
    procs,
    run_hpsearch,
    wait_for,
    write_search,
)
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture: the local cluster)
from ssh_fixture import ssh_hosts  # noqa: F401  (fixture: the SSH hosts)

from hpsearch.backends.ssh.nodes import worst
from hpsearch.runs.files import ExitRecord

FAKES = Path(__file__).resolve().parent / "fakes"

#: a tiny DDP training: every rank starts from other weights (seeded by its rank), DDP makes
#: them rank 0's and keeps them in step; each rank writes its final weights, rank 0 the
#: summary; with --hang each rank writes its pid and waits to be stopped. The ranks meet at a
#: barrier and exit without tearing gloo down: its teardown sometimes aborts a rank
#: ("terminate called without an active exception"), torch's flaw, not the launch's
DDP_SIM = '''import argparse, os, time
import torch
import torch.distributed as dist
p = argparse.ArgumentParser()
p.add_argument("--out_dir"); p.add_argument("--lr", type=float); p.add_argument("--hang", type=int)
a = p.parse_args()
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
os.makedirs(a.out_dir, exist_ok=True)
if a.hang:
    with open(os.path.join(a.out_dir, f"pid_{rank}"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(3600)
torch.manual_seed(rank)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=a.lr)
torch.manual_seed(100 + rank)
for _ in range(5):
    x = torch.randn(8, 4)
    loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
weights = torch.cat([q.detach().flatten() for q in model.parameters()]).tolist()
with open(os.path.join(a.out_dir, f"weights_{rank}.txt"), "w") as f:
    f.write(" ".join(repr(w) for w in weights) + "\\n")
if rank == 0:
    with open(os.path.join(a.out_dir, "perf.txt"), "w") as f:
        f.write(f"loss {loss.item()}\\nworld {world}\\nfinished 1\\n")
dist.barrier()
os._exit(0)
'''

SEARCH = '''script: ddp.py
summary_file: perf.txt
metrics: [loss, world, finished]
parameters:
  lr: [0.05]
  hang: [{hang}]
resources: {{gpus: {gpus}, nodes: {nodes}}}
launcher: torchrun
'''


def ddp_search(root: Path, gpus: int = 2, hang: int = 0, nodes: int = 1) -> Path:
    """``root/proj/ddp.py`` and ``root/search.yaml`` (one run of ``gpus`` GPUs on each of
    ``nodes`` nodes)."""
    (root / "proj").mkdir()
    (root / "proj" / "ddp.py").write_text(DDP_SIM)
    (root / "search.yaml").write_text(SEARCH.format(gpus=gpus, hang=hang, nodes=nodes))
    return root / "out"


def fake_gpu_env(root: Path) -> dict[str, str]:
    """hpsearch's environment with two fake 8 GiB GPUs (see the module docstring)."""
    (root / "gpu_state").mkdir()
    env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
           "HPSEARCH_NO_NVML": "1", "FAKE_GPUS": "2x8192",
           "FAKE_GPU_STATE": str(root / "gpu_state")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def local_args(out_dir: Path) -> list[str]:
    return [sys.executable, "-m", "hpsearch", "--search_file=search.yaml", "--run_cwd=proj",
            f"--out_dir={out_dir}", "--sim_startup_time=0", "--allowed_load=1"]


def run_dirs(out_dir: Path) -> list[Path]:
    return sorted((out_dir / "runs").iterdir())


def logs(run_dir: Path) -> str:
    """The ends of the run's nodes' ``stderr.log``, for a failing assertion's message."""
    found = [run_dir / "stderr.log", *sorted(run_dir.glob("nodes/*/stderr.log"))]
    return "\n".join(f"{p}: {p.read_text()[-2000:]}" for p in found if p.exists())


def check_ranks_agree(sim_out: Path, world: int) -> None:
    """Every rank of the run wrote its final weights, and they are the same numbers."""
    missing = [r for r in range(world) if not (sim_out / f"weights_{r}.txt").exists()]
    assert not missing, f"ranks {missing} wrote no weights\n{logs(sim_out.parent)}"
    weights = [(sim_out / f"weights_{rank}.txt").read_text().split() for rank in range(world)]
    assert len(weights[0]) == 5
    assert all(w == weights[0] for w in weights), weights
    assert f"world {world}" in (sim_out / "perf.txt").read_text()


def test_torchrun_starts_one_ddp_process_per_gpu_and_the_ranks_agree(tmp_path):
    """``launcher: torchrun`` with 2 GPUs on this machine: the run is two DDP processes
    (world 2) that train the same weights, started through ``torch.distributed.run
    --standalone`` on the GPUs the run was given."""
    out_dir = ddp_search(tmp_path)
    done = subprocess.run(local_args(out_dir), cwd=tmp_path, env=fake_gpu_env(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (run_dir,) = run_dirs(out_dir)
    check_ranks_agree(run_dir / "out", 2)
    assert "cuda_visible_devices=0,1" in (run_dir / "started_at").read_text()


def test_a_stop_reaches_every_process_of_a_torchrun_run(tmp_path, procs):  # noqa: F811
    """Both ranks of a running torchrun run (each in a session of its own, torchrun's doing)
    are gone once the interrupted driver has stopped the run."""
    out_dir = ddp_search(tmp_path, hang=1)
    driver = subprocess.Popen(local_args(out_dir), cwd=tmp_path, env=fake_gpu_env(tmp_path),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, text=True)
    procs.append(driver)
    pid_files = lambda: sorted(out_dir.glob("runs/*/out/pid_*"))  # noqa: E731
    wait_for(lambda: len(pid_files()) == 2, timeout=240, what="both ranks' pid files",
             poll=0.2)
    pids = [int(p.read_text()) for p in pid_files()]
    assert all(pid_alive(pid) for pid in pids)
    driver.send_signal(signal.SIGINT)
    driver.wait(timeout=120)
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=60,
             what="both ranks stopped", poll=0.2)


@pytest.mark.parametrize(("flags", "script", "expected"), [
    (["--nodes_per_run=2"], "ddp.py", "2 nodes per run, but a local run spans this machine"),
    (["--python=/bin/sh"], "ddp.py", "launcher: torchrun starts a Python command, but the "
     "command's interpreter is '/bin/sh'"),
    ([], "train.sh", "launcher: torchrun starts a Python script, but the script is "
     "'train.sh'"),
    (["--launcher=deepspeed"], "ddp.py", "--launcher=deepspeed is not one of torchrun, srun, "
     "mpirun"),
], ids=["local-2-nodes", "not-python", "not-a-py-script", "unknown-launcher"])
def test_what_no_launcher_here_can_start_is_refused_in_one_line(tmp_path, flags, script,
                                                                 expected):
    """Exit 2, one line naming the problem and the fix, nothing written."""
    out_dir = ddp_search(tmp_path, gpus=0)
    (tmp_path / "proj" / "train.sh").write_text("#!/bin/sh\n")
    search = tmp_path / "search.yaml"
    search.write_text(search.read_text().replace("ddp.py", script))
    code, _, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=proj",
                                 f"--out_dir={out_dir}", "--visible_gpus=-1", *flags],
                                cwd=tmp_path)
    assert code == 2
    assert err.startswith("hpsearch: error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists()


def test_an_unknown_launcher_in_the_search_file_is_refused(tmp_path):
    out_dir = ddp_search(tmp_path, gpus=0)
    search = tmp_path / "search.yaml"
    search.write_text(search.read_text().replace("launcher: torchrun", "launcher: horovod"))
    code, _, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=proj",
                                 f"--out_dir={out_dir}", "--visible_gpus=-1"], cwd=tmp_path)
    assert code == 2
    assert "launcher must be one of torchrun, srun, mpirun" in err and "'horovod'" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists()


def test_a_grid_module_s_launcher_is_read_and_checked(tmp_path):
    """``_LAUNCHER = "torchrun"`` in a grid module starts its runs through torchrun (here:
    refused for a shell interpreter, as a search file's would be); an unknown one is named."""
    s = write_search(tmp_path, {"lr": [0.1]})
    module = s.sim_dir / "hpconf.py"
    module.write_text(module.read_text() + '_LAUNCHER = "torchrun"\n')
    code, _, err = run_hpsearch(s.args("--python=/bin/sh"), cwd=tmp_path)
    assert code == 2 and "launcher: torchrun starts a Python command" in err, err
    module.write_text(module.read_text().replace('"torchrun"', '"horovod"'))
    code, _, err = run_hpsearch(s.args(), cwd=tmp_path)
    assert code == 2 and "_LAUNCHER must be one of torchrun, srun, mpirun" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not s.out_dir.exists()


@pytest.mark.parametrize("packed", [False, True], ids=["array", "packed"])
def test_slurm_runs_a_one_node_torchrun_run_in_its_job(tmp_path, slurm_cluster, packed):  # noqa: F811
    """On the real local Slurm a run of 2 GPUs is a job of ``--gres=gpu:2`` whose command
    is ``<python> -m torch.distributed.run --standalone --nnodes=1 --nproc_per_node=2 ...``:
    two DDP ranks train the same weights; so does a packed worker's run on its job's two
    GPUs (``--runs_per_job``)."""
    out_dir = ddp_search(tmp_path)
    packing = ["--runs_per_job=1", "--slurm_gres=gpu:2"] if packed else ["--slurm_gres="]
    code, _, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=proj",
                                 f"--out_dir={out_dir}", "--run_cluster", "--scheduler=slurm",
                                 "--slurm_mem=1G", *packing], cwd=tmp_path, timeout=300)
    assert code == 0, err
    (run_dir,) = run_dirs(out_dir)
    check_ranks_agree(run_dir / "out", 2)
    if not packed:
        (script,) = (out_dir / "slurm_logs" / "scripts").glob("*.sh")
        text = script.read_text()
        assert "#SBATCH --gres=gpu:2" in text.splitlines()
        assert (f"{sys.executable} -m torch.distributed.run --standalone --nnodes=1 "
                f"--nproc_per_node=2 ddp.py --out_dir={run_dir / 'out'}") in text


def two_node_slurm_dry_run(tmp_path: Path, out_dir: Path, *flags: str) -> str:
    """What ``--dry_run`` prints for the DDP search on Slurm, 2 nodes per run, no GPUs."""
    code, out, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=proj",
                                   f"--out_dir={out_dir}", "--run_cluster",
                                   "--scheduler=slurm", "--slurm_gres=", "--nodes_per_run=2",
                                   "--dry_run", *flags], cwd=tmp_path)
    assert code == 0, err
    return out


def test_slurm_job_of_a_two_node_torchrun_run_starts_it_on_both_nodes(tmp_path):
    """``--nodes_per_run=2``: the job asks ``--nodes=2``, and its run is ONE ``srun`` of one
    task per node starting the same torchrun on each, the c10d rendezvous at the first host
    of the job's node list on a port free there, named by the run's id; the script's
    ``hpsearch_endpoint``, run with the real ``scontrol``, gives ``<first host>:<port>``."""
    out_dir = ddp_search(tmp_path, gpus=0)
    out = two_node_slurm_dry_run(tmp_path, out_dir, "--cpus_per_run=3")
    lines = out.splitlines()
    assert "#SBATCH --nodes=2" in lines
    assert "#SBATCH --cpus-per-task=3" in lines
    (case,) = [line for line in lines if line.startswith("    0) ")]
    run_id = re.search(r"/runs/([\w-]+)", case).group(1)
    sim_out = out_dir.resolve() / "runs" / run_id / "out"
    assert case.endswith(
        f"hps_rdzv=$(hpsearch_endpoint {sys.executable}); hpsearch_task "
        f"{out_dir.resolve() / 'runs' / run_id} '' \"$hps_job\" \"$hps_host\" "
        f"{(tmp_path / 'proj').resolve()} srun --nodes=2 --ntasks=2 --ntasks-per-node=1 "
        f"--cpus-per-task=3 --kill-on-bad-exit=1 {sys.executable} -m torch.distributed.run "
        "--nnodes=2 --nproc_per_node=1 --rdzv_backend=c10d \"--rdzv_endpoint=$hps_rdzv\" "
        f"--rdzv_id={run_id} ddp.py --out_dir={sim_out} --lr=0.05 --hang=0 ;;"), case
    start = out.index("hpsearch_endpoint() {")
    function = out[start:out.index("\n}\n", start) + 3]
    found = subprocess.run(["bash", "-c", f'{function}hpsearch_endpoint "$1"', "test",
                            sys.executable], env={**os.environ,
                                                  "SLURM_JOB_NODELIST": "node[7-8]"},
                           capture_output=True, text=True, timeout=60, check=False)
    assert found.returncode == 0, found.stderr
    host, port = found.stdout.strip().split(":")
    assert host == "node7" and 1024 <= int(port) <= 65535


def test_the_node_launch_lines_run_in_a_real_slurm_job(tmp_path, slurm_cluster):  # noqa: F811
    """The 2-node job script's lines, with its counts set to the one node the local Slurm
    has, run as sbatch gets them: ``hpsearch_endpoint`` finds the job's first host and a
    free port, ONE ``srun`` starts torchrun with that c10d rendezvous, and the run's wrapper
    records exit status 0 of a trained DDP rank (a real 2-node job cannot run here)."""
    out_dir = ddp_search(tmp_path, gpus=0)
    out = two_node_slurm_dry_run(tmp_path, out_dir, "--slurm_mem=1G")
    script = out[out.index("#!/bin/bash"):out.index("\nesac\n") + len("\nesac\n")]
    for two, one in [("--nodes=2", "--nodes=1"), ("--ntasks=2", "--ntasks=1"),
                     ("--nnodes=2", "--nnodes=1")]:
        assert two in script
        script = script.replace(two, one)
    run_id = re.search(r"/runs/([\w-]+)", script).group(1)
    run_dir = out_dir.resolve() / "runs" / run_id
    run_dir.mkdir(parents=True)
    (out_dir / "slurm_logs").mkdir()
    (tmp_path / "job.sh").write_text(script)
    job = subprocess.run(["sbatch", "--parsable", str(tmp_path / "job.sh")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    wait_for(lambda: (run_dir / "exit_code").exists(), timeout=240,
             what=f"job {job} recording its run's exit", poll=0.5)
    assert (run_dir / "exit_code").read_text().split()[0] == "0", logs(run_dir)
    check_ranks_agree(run_dir / "out", 1)


def test_schedulers_without_a_node_launch_refuse_a_two_node_torchrun_run(tmp_path):
    """LSF's jobs start a run's command on their first host only: a 2-node torchrun run is
    refused in one line before anything is submitted."""
    out_dir = ddp_search(tmp_path, gpus=0)
    code, _, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=proj",
                                 f"--out_dir={out_dir}", "--run_cluster", "--scheduler=lsf",
                                 "--nodes_per_run=2", "--dry_run"], cwd=tmp_path)
    assert code == 2
    assert "launcher: torchrun on 2 nodes per run, but lsf jobs start it on one node only" \
        in err, err
    assert len(err.strip().splitlines()) == 1, err


def ssh_args(out_dir: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "hpsearch", "--search_file=search.yaml", "--run_cwd=proj",
            f"--out_dir={out_dir}", "--hosts=gpu1,gpu2", *flags]


def test_a_two_node_torchrun_run_across_two_ssh_hosts_trains_ddp_whose_ranks_agree(
        tmp_path, ssh_hosts):  # noqa: F811
    """``nodes: 2`` on ``--hosts=gpu1,gpu2``: one wrapper on each host (node 0's files in the
    run directory, node 1's in ``nodes/1/``), the same torchrun with the rendezvous on gpu1;
    the two ranks (world 2) end with the same weights and the run is finished."""
    out_dir = ddp_search(tmp_path, gpus=0, nodes=2)
    done = subprocess.run(ssh_args(out_dir), cwd=tmp_path, env=ssh_hosts.env(),
                          capture_output=True, text=True, timeout=300, check=False)
    (run_dir,) = run_dirs(out_dir)
    assert done.returncode == 0, f"{done.stderr}\n{logs(run_dir)}"
    check_ranks_agree(run_dir / "out", 2)
    hosts = {(d / "started_at").read_text().split("host=")[1].split()[0]
             for d in (run_dir, run_dir / "nodes" / "1")}
    assert hosts == {"gpu1", "gpu2"}
    assert (run_dir / "exit_code").read_text().startswith("0 ")
    assert (run_dir / "nodes" / "1" / "exit_code").read_text().startswith("0 ")


@pytest.mark.parametrize("how", ["interrupt", "cancel", "resumed"])
def test_a_stop_reaches_both_nodes_of_a_run_on_ssh_hosts(tmp_path, ssh_hosts, procs, how):  # noqa: F811
    """A stop ends both ranks of a 2-node run, each on its own host: a cancel by the driver
    (``--cancel_on_interrupt``, then SIGINT); ``hpsearch cancel`` after ``kill -9`` of the
    driver (the run's job id names both nodes' wrappers); the driver's cancel after ``kill
    -9`` and the same command again, which reattached both nodes. With the driver's cancel
    each node's wrapper got the SIGTERM itself (its exit file says ``TERM``), not only the
    rendezvous' end."""
    out_dir = ddp_search(tmp_path, gpus=0, nodes=2, hang=1)
    flags = [] if how == "cancel" else ["--cancel_on_interrupt"]

    def start_driver() -> subprocess.Popen[str]:
        driver = subprocess.Popen(ssh_args(out_dir, *flags), cwd=tmp_path,
                                  env=ssh_hosts.env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                  text=True)
        procs.append(driver)
        return driver

    driver = start_driver()
    pid_files = lambda: sorted(out_dir.glob("runs/*/out/pid_*"))  # noqa: E731
    wait_for(lambda: len(pid_files()) == 2, timeout=240, what="both ranks' pid files",
             poll=0.2)
    pids = [int(p.read_text()) for p in pid_files()]
    assert all(pid_alive(pid) for pid in pids)
    if how != "interrupt":
        journal = out_dir / "journal.jsonl"
        wait_for(lambda: "+gpu2:" in journal.read_text(), timeout=60, what="the job journaled")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    if how == "cancel":
        done = subprocess.run([sys.executable, "-m", "hpsearch", "cancel", str(out_dir)],
                              cwd=tmp_path, env=ssh_hosts.env(), capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    else:
        if how == "resumed":
            status = out_dir / "ssh_hosts.json"
            status.unlink()
            driver = start_driver()
            wait_for(lambda: status.exists() and all(
                h["runs"] for h in json.loads(status.read_text())["hosts"].values()),
                timeout=120, what="both nodes reattached", poll=0.2)
        driver.send_signal(signal.SIGINT)
        driver.wait(timeout=120)
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=60,
             what="both ranks stopped", poll=0.2)
    if how != "cancel":
        (run_dir,) = run_dirs(out_dir)
        for files in (run_dir, run_dir / "nodes" / "1"):
            wait_for(lambda f=files: (f / "exit_code").exists(), timeout=60,
                     what=f"{files} ended")
            assert (files / "exit_code").read_text().split()[2:] == ["TERM"]


def test_a_run_of_several_nodes_takes_the_worst_of_its_nodes_verdicts():
    """Every node 0: finished; else the first node that did not exit 0, or that left no
    exit code, names the run's failure."""
    ok = ExitRecord(0, "k1", 2.0, 1.0)
    failed = ExitRecord(3, "k1", 2.0, 1.0)
    assert worst([("gpu1", ok), ("gpu2", ok)]) is None
    assert worst([("gpu1", ok), ("gpu2", failed)]) == (1, "node 1 (gpu2) exited with status 3")
    assert worst([("gpu1", ok), ("gpu2", None)]) == (1, "node 1 (gpu2) ended without an "
                                                      "exit code")


def test_ssh_hosts_refuse_what_they_cannot_start_on_several_nodes(tmp_path, ssh_hosts):  # noqa: F811
    """More nodes than hosts, and several nodes without torchrun: one line, exit 2."""
    out_dir = ddp_search(tmp_path, gpus=0, nodes=3)
    done = subprocess.run(ssh_args(out_dir), cwd=tmp_path, env=ssh_hosts.env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "3 nodes per run, but 2 of the SSH hosts can each hold a node" in done.stderr
    done = subprocess.run(ssh_args(out_dir, "--launcher=srun"), cwd=tmp_path,
                          env=ssh_hosts.env(), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2
    assert "runs of 3 nodes cannot run on SSH hosts without launcher: torchrun" in done.stderr
    assert not out_dir.exists()
