"""The suite tests what users install: the wheel, not the checkout.

``scripts/test.sh`` installs hpsearch's wheel into ``.venv`` (not editable) and runs pytest
with ``python -P``, so nothing here can import the checkout by accident. These tests check
that, and that the features that need the package's data files (the job-script templates)
work from a directory outside the checkout.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

from conftest import REPO, hpsearch_cmd, hpsearch_env, run_hpsearch, write_search
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

import hpsearch


def test_hpsearch_is_imported_from_the_installed_wheel():
    installed = Path(hpsearch.__file__).resolve()
    assert installed.parent != REPO / "hpsearch", f"imported from the checkout: {installed}"
    assert "site-packages" in installed.parts
    backends = resources.files("hpsearch.backends")
    names = {p.name for scheduler in ("slurm", "lsf")
             for p in backends.joinpath(scheduler, "templates").iterdir()}
    assert {"slurm_array.sbatch.j2", "lsf_array.bsub.j2", "slurm_driver.sbatch.j2",
            "lsf_driver.bsub.j2"} <= names
    done = subprocess.run([sys.executable, "-c", "import hpsearch; print(hpsearch.__file__)"],
                          cwd="/", env=hpsearch_env(), capture_output=True, text=True,
                          check=True)
    assert Path(done.stdout.strip()).resolve() == installed  # the same for subprocesses


def test_the_wheel_holds_every_file_of_the_checkouts_package():
    """Every module and data file under the checkout's ``hpsearch/`` is installed: a
    sub-package or a folder of templates or assets that ``pyproject.toml`` does not pick up
    would be missing from what users get."""
    installed = Path(hpsearch.__file__).resolve().parent
    source = REPO / "hpsearch"
    files = {p.relative_to(source) for p in source.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    missing = sorted(str(f) for f in files if not (installed / f).is_file())
    assert not missing, f"not in the installed package: {missing}"


def test_cluster_features_work_from_outside_the_checkout(tmp_path, lsf):  # noqa: F811
    s = write_search(tmp_path, {"x": [1, 2]})
    flags = ["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={s.out_dir}"]
    for scheduler, marker in (("slurm", "#SBATCH --array=0-1%8"), ("lsf", "#BSUB -J")):
        rc, out, err = run_hpsearch([*flags, "--run_cluster", f"--scheduler={scheduler}",
                                     "--dry_run"], tmp_path)
        assert rc == 0 and marker in out, err
        done = subprocess.run(hpsearch_cmd(["wrap", *flags, "--run_cluster",
                                            f"--scheduler={scheduler}"]), cwd=tmp_path,
                              env=hpsearch_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "hpsearch" in done.stdout, done.stderr
    rc, _, err = run_hpsearch([*flags, "--run_cluster", "--scheduler=lsf"], tmp_path)
    assert rc == 0, err
    assert {r["status"] for r in s.results()} == {"finished"}
