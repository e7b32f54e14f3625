"""Resources per run on clusters (issue 22, item 1): one array per shape with that shape's
directives, a 2-GPU run's job sees both GPUs, a packed worker places a 2-GPU run on two of its
job's GPUs, and resources a packed job can never hold are refused before anything is submitted.

Real parts: the CLI, the driver, the real local Slurm (``scripts/slurm/start.sh``: one node,
two fake GPUs, ``gres gpu:2``, so Slurm itself sets each job's CUDA_VISIBLE_DEVICES). LSF is the
emulator of ``tests/lsf_emulator`` (no LSF can run here), which reads the ``#BSUB`` lines as
bsub does.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import Search, run_hpsearch, write_search
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture: the local cluster)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

#: each run prints the GPUs its job gave it
SIM = '''import argparse, os
p = argparse.ArgumentParser()
p.add_argument("--out_dir"); p.add_argument("--size"); p.add_argument("--i")
a = p.parse_args()
print(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
os.makedirs(a.out_dir, exist_ok=True)
with open(os.path.join(a.out_dir, "perf.txt"), "w") as f:
    f.write("acc 1\\nloss 0\\nfinished 1\\n")
'''

MODULE = '''
grid = {"size": ["small", "large"], "i": [0, 1]}
conditions = []
_SCRIPT_NAME = "sim.py"
_SUMMARY_FILENAME = "perf.txt"
_SUMMARY_KEYWORDS = ["acc", "loss", "finished"]
_RESOURCES = [{"when": {"size": "large"}, "gpus": %d}, {"gpus": 1}]
'''


def gpu_search(root: Path, large_gpus: int = 2) -> Search:
    s = write_search(root, {}, module_text=MODULE % large_gpus)
    (s.sim_dir / "sim.py").write_text(SIM)
    return s


def seen(s: Search) -> dict[str, str]:
    """size -> the CUDA_VISIBLE_DEVICES each run of that size printed (sorted, joined)."""
    found: dict[str, set[str]] = {}
    for row in s.results():
        text = (s.out_dir / "runs" / row["run_id"] / "stdout.log").read_text().strip()
        found.setdefault(row["size"], set()).add(text)
    return {size: " ".join(sorted(values)) for size, values in found.items()}


def test_slurm_submits_one_array_per_shape_and_a_2gpu_job_sees_both(tmp_path, slurm_cluster):  # noqa: F811
    """The flags ask no GPU (--slurm_gres=); the rules give large runs 2 GPUs, the others 1:
    two arrays, one per shape, each with its --gres and only its runs; each large run's job
    sees both GPUs of the node, each small one's one GPU."""
    s = gpu_search(tmp_path)
    code, _, err = run_hpsearch([
        "--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={s.out_dir}", "--run_cluster",
        "--scheduler=slurm", "--slurm_gres=", "--slurm_mem=50M"], cwd=tmp_path, timeout=300)
    assert code == 0, err
    rows = {r["run_id"]: r for r in s.results()}
    assert {r["status"] for r in rows.values()} == {"finished"}
    arrays = {}
    for script in (s.out_dir / "slurm_logs" / "scripts").glob("*.sh"):
        text = script.read_text()
        gres = re.findall(r"^#SBATCH --gres=(\S+)$", text, re.MULTILINE)
        sizes = {rows[run_id]["size"] for run_id in re.findall(r"/runs/(\w+)", text)}
        arrays[" ".join(gres)] = sizes
    assert arrays == {"gpu:2": {"large"}, "gpu:1": {"small"}}
    assert seen(s)["large"] == "0,1"
    assert set(seen(s)["small"].split()) <= {"0", "1"}


def test_a_packed_worker_places_a_2gpu_run_on_two_of_its_jobs_gpus(tmp_path, slurm_cluster):  # noqa: F811
    """--runs_per_job=2 with jobs of 2 GPUs: the workers run every shape; a large run gets both
    of its job's GPUs, a small one one of them."""
    s = gpu_search(tmp_path)
    code, _, err = run_hpsearch([
        "--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={s.out_dir}", "--run_cluster",
        "--scheduler=slurm", "--slurm_gres=gpu:2", "--slurm_mem=50M", "--runs_per_job=2"],
        cwd=tmp_path, timeout=300)
    assert code == 0, err
    assert {r["status"] for r in s.results()} == {"finished"}
    assert seen(s)["large"] == "0,1"
    assert set(seen(s)["small"].split()) <= {"0", "1"}


def test_a_packed_job_too_small_for_a_run_is_refused_before_submitting(tmp_path):
    """A run of 2 GPUs in packed jobs of 1 GPU can never run: one line, exit 2, nothing
    written (checked with --dry_run off, before sbatch is ever needed)."""
    s = gpu_search(tmp_path)
    code, out, err = run_hpsearch([
        "--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={s.out_dir}", "--run_cluster",
        "--scheduler=slurm", "--slurm_gres=gpu:1", "--runs_per_job=2", "--dry_run"],
        cwd=tmp_path)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "2 GPUs per run" in err
    assert "each packed job has 1" in err and not s.out_dir.exists() and out == ""


def test_lsf_asks_gpu_num_2_for_the_2gpu_shape(tmp_path, lsf):  # noqa: F811
    """On the LSF emulator the large runs' array asks ``-gpu num=2`` (and its -n), the small
    runs' ``-gpu num=1``: one array per shape, each run finished."""
    s = gpu_search(tmp_path)
    code, _, err = run_hpsearch([
        "--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={s.out_dir}", "--run_cluster",
        "--scheduler=lsf", "--resources=rusage[mem=100]", "--lsf_gpu="], cwd=tmp_path,
        timeout=300)
    assert code == 0, err
    rows = {r["run_id"]: r for r in s.results()}
    assert {r["status"] for r in rows.values()} == {"finished"}
    arrays = {}
    for script in (s.out_dir / "lsf_logs" / "scripts").glob("*.sh"):
        text = script.read_text()
        gpu = re.findall(r"^#BSUB -gpu (\S+)$", text, re.MULTILINE)
        sizes = {rows[run_id]["size"] for run_id in re.findall(r"/runs/(\w+)", text)}
        arrays[" ".join(gpu)] = sizes
    assert arrays == {"num=2": {"large"}, "num=1": {"small"}}
