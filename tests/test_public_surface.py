"""The public surface: what users, grid modules, sims and queued job scripts name keeps working.

``from hpsearch import report`` (a sim), ``from hpsearch.space import loguniform`` (a grid
module), ``hpsearch.client.Client`` (a worker of ``hpsearch serve``), the console script
``hpsearch = hpsearch.cli:main``, and ``python -m hpsearch.worker`` /
``python -m hpsearch.objective_runner`` (queued job scripts and recorded run commands). Each
public module says what it exports with ``__all__``; the ones a sim or a grid module imports
stay standard library only (a compute node may have nothing else).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys

import pytest
from conftest import hpsearch_env

#: each public module and what it exports, exactly
PUBLIC = {
    "hpsearch": {"report"},
    "hpsearch.space": {"Distribution", "categorical", "lognormal", "loguniform", "normal",
                       "qlognormal", "qloguniform", "qnormal", "quniform", "uniform",
                       "uniformint"},
    "hpsearch.client": {"Client", "ClientError", "token_of"},
    "hpsearch.cli": {"main", "main_group"},
}

#: third-party packages hpsearch uses somewhere: none may be loaded by a sim's or a grid
#: module's import of hpsearch, nor by the client's
THIRD_PARTY = ("click", "yaml", "ruamel", "jinja2", "numpy", "scipy", "optuna", "fastapi",
               "uvicorn", "pydantic", "orjson", "torch")


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_a_public_module_exports_what_it_declares(module: str) -> None:
    loaded = importlib.import_module(module)
    assert set(loaded.__all__) == PUBLIC[module]
    for name in loaded.__all__:
        assert getattr(loaded, name) is not None, f"{module}.{name}"


def test_the_public_names_are_the_ones_users_call() -> None:
    from hpsearch import report
    from hpsearch.cli import main
    from hpsearch.client import Client
    from hpsearch.space import Distribution, loguniform

    assert callable(report.should_stop) and callable(main)
    assert isinstance(loguniform(1e-5, 1e-1), Distribution)
    assert callable(Client)


def test_the_console_script_is_the_cli_main() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="console_scripts")
                if e.name == "hpsearch"]
    assert entry.value == "hpsearch.cli:main"
    from hpsearch.cli import main

    assert entry.load() is main


@pytest.mark.parametrize("module, usage", [
    ("hpsearch.worker", "usage: python -m hpsearch.worker PACK_DIR JOB"),
    ("hpsearch.objective_runner", "usage: python -m hpsearch.objective_runner FILE.py:FUNCTION"),
])
def test_the_job_scripts_entry_points_answer_with_their_usage(tmp_path, module: str,
                                                               usage: str) -> None:
    """Without arguments each prints its usage line and exits 2 (run as a job script runs
    it: ``python -m``, from a folder that is not the checkout)."""
    proc = subprocess.run([sys.executable, "-P", "-m", module], cwd=tmp_path,
                          env=hpsearch_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert usage in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_sim_a_grid_module_and_the_client_import_the_standard_library_only(tmp_path) -> None:
    code = ("import json, sys\n"
            "from hpsearch import report\n"
            "from hpsearch.space import loguniform, uniformint\n"
            "from hpsearch.client import Client\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n")
    proc = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, env=hpsearch_env(),
                          capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(proc.stdout))
    assert not loaded & set(THIRD_PARTY), sorted(loaded & set(THIRD_PARTY))
