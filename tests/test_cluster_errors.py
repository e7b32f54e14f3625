"""A cluster backend on a machine where the scheduler is missing or refuses: one line, no
traceback. The refusing ``bsub`` here is a stub that prints LSF's refusal text and exits
255, as ``bsub`` does for a malformed request; nothing else of LSF is needed."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from conftest import hpsearch_cmd, hpsearch_env, write_search


def run_with_path(args, cwd, path):
    env = hpsearch_env()
    env["PATH"] = path
    done = subprocess.run(hpsearch_cmd(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    return done.returncode, done.stderr


@pytest.mark.parametrize("scheduler,command", [("slurm", "sbatch"), ("lsf", "bsub")])
def test_missing_scheduler_is_a_usage_error_before_anything_is_written(
        tmp_path, scheduler, command):
    s = write_search(tmp_path, {"x": [1]})
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    rc, err = run_with_path(s.args("--run_cluster", f"--scheduler={scheduler}"), tmp_path,
                            str(empty))
    assert rc == 2, err
    assert err.startswith(f"hpsearch: error: {command} is not on PATH") and err.count("\n") == 1
    assert not s.out_dir.exists()


def test_a_scheduler_refusal_mid_search_is_one_line_and_resumable(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2]})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {"bsub": 'echo "Bad resource requirement syntax. Job not submitted." >&2; exit 255',
             "bjobs": "exit 0", "bkill": "exit 0", "bmod": "exit 0", "bparams": "exit 255"}
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    rc, err = run_with_path(s.args("--run_cluster", "--scheduler=lsf"), tmp_path,
                            f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert rc == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("hpsearch: error: ") and "Bad resource requirement" in last
    assert "run the same command again to resume" in last and "Traceback" not in err
    assert (s.out_dir / "journal.jsonl").exists() and not (s.out_dir / ".hpsearch.lock").exists()
