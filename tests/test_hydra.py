"""Hydra apps as they are: a real hydra-core app searched with ``from_hydra`` through the CLI.

The app is ``sims/hydra_app`` (copied per test): a Hydra app configured for the Optuna sweeper,
plus three lines writing the summary file. hpsearch reads its ``hydra.sweeper`` section, runs
it with the proposals as Hydra overrides, and Hydra itself writes each run's
``.hydra/overrides.yaml`` and config: the tests read those back with Hydra's own override
parser and compare them with the journal's configurations.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, hpsearch_env, run_hpsearch
from hydra.core.override_parser.overrides_parser import OverridesParser

from hpsearch.spec.hydra import override_value

APP = REPO / "sims" / "hydra_app"
#: what ``hydra.sweeper.params`` of sims/hydra_app/conf/config.yaml allows, per parameter
ALLOWED = {"x": lambda v: -2 <= v <= 2 and isinstance(v, float),
           "model.lr": lambda v: 1e-4 <= v <= 1e-1,
           "layers": lambda v: v in (1, 2, 3, 4),
           "optimizer": lambda v: v in ("adam", "sgd momentum", "it's"),
           "epochs": lambda v: v in (1, 3, 5)}


@pytest.fixture
def app(tmp_path) -> Path:
    shutil.copytree(APP, tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "app"


def parsed(overrides: list[str]) -> dict[str, object]:
    """``key=value`` words as Hydra reads them: ``{key: value}`` (a ``+`` kept in the key)."""
    return {o.get_key_element(): o.value() for o in
            OverridesParser.create().parse_overrides(overrides)}


def run_records(out_dir: Path) -> list[dict]:
    return [json.loads((d / "run.json").read_text()) for d in sorted((out_dir / "runs").iterdir())]


def nested(config: dict, dotted: str) -> object:
    for part in dotted.split("."):
        config = config[part]
    return config


def test_from_hydra_runs_the_app_with_the_proposals_as_its_overrides(app):
    out = app / "out" / "hydra"
    code, stdout, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=.",
                                      f"--out_dir={out}", "--visible_gpus=-1", "--num_jobs=2"],
                                     app, timeout=300)
    assert code == 0, err
    with open(out / "search_results.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"finished"}, rows  # n_trials
    assert "tpe" in err  # the sweeper's TPESampler
    records = run_records(out)
    for record in records:
        config, run_out = record["config"], out / "runs" / record["run_id"] / "out"
        assert all(ALLOWED[name](value) for name, value in config.items()), config
        overrides = yaml.safe_load((run_out / ".hydra" / "overrides.yaml").read_text())
        # what Hydra was given is what was proposed: epochs is not in the app's config
        assert parsed(overrides) == {("+epochs" if k == "epochs" else k): v
                                     for k, v in config.items()}
        given = json.loads((run_out / "config.json").read_text())
        assert {k: nested(given, k) for k in config} == config
        assert nested(given, "model.width") == 8  # the config group's own keys stay
        assert (run_out / "performance_overview.txt").is_file()
        assert (run_out / ".hydra" / "config.yaml").is_file()
    assert not (app / "outputs").exists() and not (app / "multirun").exists()
    assert len({json.dumps(r["config"], sort_keys=True) for r in records}) == 6


def test_a_search_files_own_settings_win_over_the_sweepers(app):
    (app / "search.yaml").write_text("script: app.py\nfrom_hydra: conf/config.yaml\n"
                                     "algorithm: random\nnum_trials: 2\n"
                                     "parameters: {x: [0.5]}\n")
    out = app / "out" / "own"
    code, stdout, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=.",
                                      f"--out_dir={out}", "--visible_gpus=-1"], app, timeout=300)
    assert code == 0, err
    records = run_records(out)
    assert len(records) == 2 and {r["config"]["x"] for r in records} == {0.5}
    assert all(ALLOWED[k](v) for r in records for k, v in r["config"].items())
    assert "random" in err


@pytest.mark.parametrize("value", [
    "plain", "a b", "it's", "back\\", "back\\'slash", "a\\b", "1", "1.5", "true", "null", "nan",
    "", "a=b,c", "[1,2]", "${x}", "-x", "é", 0, -3, 1e-05, 2.5, float("inf"), True, None,
    [1, "a b", [2.5]], {"k": "v w", "n": 1}])
def test_values_are_written_the_way_hydra_reads_them_back(value):
    assert parsed([f"key={override_value(value)}"]) == {"key": value}


def test_arg_format_hydra_with_parameters_of_the_search_file(app):
    """``arg_format: hydra`` for a search file's own parameters: with ``hydra_config`` a key
    the app lacks gets ``+``; the dry run shows the command."""
    (app / "search.yaml").write_text(
        "script: app.py\narg_format: hydra\nhydra_config: conf/config.yaml\nmetrics: [objective]\n"
        "parameters: {x: [0.25], model.width: [16], epochs: [2], optimizer: ['sgd momentum']}\n")
    out = app / "out" / "own"
    code, stdout, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=.",
                                      f"--out_dir={out}", "--visible_gpus=-1"], app, timeout=300)
    assert code == 0, err
    (record,) = run_records(out)
    run_out = out / "runs" / record["run_id"] / "out"
    overrides = yaml.safe_load((run_out / ".hydra" / "overrides.yaml").read_text())
    assert overrides == ["x=0.25", "model.width=16", "+epochs=2", "optimizer='sgd momentum'"]
    assert record["argv"][-2:] == [f"hydra.run.dir={run_out}", "hydra.job.chdir=False"]
    assert json.loads((run_out / "config.json").read_text())["model"]["width"] == 16
    # the report's command to run it again by hand writes into a folder of its own
    code, stdout, err = run_hpsearch(["report", str(out), "-o", str(app / "r.html")], app)
    assert code == 0, err
    page = (app / "r.html").read_text()
    assert f"hydra.run.dir=rerun_{record['run_id']}" in page and str(run_out) not in page
    # the same directory resumed with the runs' arguments in another format is refused: its
    # runs that did not end would start with another argv
    (app / "search.yaml").write_text(
        "script: app.py\nmetrics: [objective]\n"
        "parameters: {x: [0.25], model.width: [16], epochs: [2], optimizer: ['sgd momentum']}\n")
    code, stdout, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=.",
                                      f"--out_dir={out}", "--visible_gpus=-1"], app)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "arg_format is 'hydra', not 'flags'" in err


def one_line_error(app: Path, *flags: str) -> str:
    out = app / "out" / "bad"
    code, stdout, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=.",
                                      f"--out_dir={out}", "--visible_gpus=-1", *flags], app)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()
    return err


def test_a_config_without_a_sweeper_section_is_one_line(app):
    config = app / "conf" / "config.yaml"
    config.write_text(config.read_text().split("hydra:")[0])
    err = one_line_error(app)
    assert "has no hydra.sweeper.params" in err and "config.yaml" in err


@pytest.mark.parametrize("sweep, words", [
    ("glob(*)", "the sweep Glob has no counterpart here"),
    ("nosuch(1, 2)", "is not a sweep Hydra reads"),
    ("tag(grid, interval(0, 1))", "tag grid means nothing to hpsearch"),
    ("range(5, 1, 1)", "holds no value"),
])
def test_an_unknown_sweep_function_is_one_line(app, sweep, words):
    config = app / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("interval(-2, 2)", sweep))
    err = one_line_error(app)
    assert words in err and "hydra.sweeper.params.x" in err


def test_an_unknown_sampler_is_one_line_naming_ours(app):
    config = app / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("TPESampler", "GridSampler"))
    err = one_line_error(app)
    assert "sampler 'GridSampler' has no counterpart here" in err and "nsgaii" in err


def test_from_hydra_with_a_missing_file_or_a_grid_module_is_one_line(app):
    assert "does not exist" in one_line_error(app, "--from_hydra=conf/nothere.yaml")
    code, stdout, err = run_hpsearch(["--grid_module=x", "--from_hydra=conf/config.yaml",
                                      "--run_cwd=.", "--visible_gpus=-1"], app)
    assert code == 2 and "--from_hydra" in err and len(err.strip().splitlines()) == 1, err


def test_from_hydra_without_hydra_installed_names_the_extra(app, tmp_path):
    """Hydra's parser missing (a ``hydra`` package that cannot be imported, first on the
    path): one line naming the extra."""
    hidden = tmp_path / "hidden" / "hydra"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hydra-core is not installed')\n")
    env = {**hpsearch_env(), "PYTHONPATH": str(hidden.parent)}
    done = subprocess.run([sys.executable, "-m", "hpsearch", "--search_file=search.yaml",
                           "--run_cwd=.", f"--out_dir={app / 'out' / 'x'}", "--visible_gpus=-1"],
                          cwd=app, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "pip install 'hpsearch[hydra]'" in done.stderr
    assert not (app / "out").exists()


COMPOSED_APP = '''
import json, os
import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    out = HydraConfig.get().runtime.output_dir
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(OmegaConf.to_container(cfg), f)
    with open(os.path.join(out, "performance_overview.txt"), "w") as f:
        f.write("objective 0\\nfinished 1\\n")

main()
'''


def test_keys_of_the_configs_the_defaults_list_selects_are_the_apps_too(tmp_path):
    """A nested config group, a group under another package and a plain config merged at the
    top bring keys of their own: those are set plainly, any other with '+', and Hydra (which
    refuses either mistake) runs the app with every value in place."""
    app = tmp_path / "composed"
    files = {"app.py": COMPOSED_APP,
             "conf/config.yaml": "defaults:\n  - base\n  - model/enc: small\n"
                                 "  - db@store: pg\n  - _self_\ntop: 1\n",
             "conf/base.yaml": "seed: 0\n", "conf/model/enc/small.yaml": "depth: 2\n",
             "conf/db/pg.yaml": "host: localhost\n",
             "search.yaml": "script: app.py\narg_format: hydra\nhydra_config: conf/config.yaml\n"
                            "metrics: [objective]\nparameters:\n  seed: [1]\n  top: [2]\n"
                            "  model.enc.depth: [3]\n  model.enc.width: [4]\n"
                            "  store.host: [db.example]\n  store.port: [5432]\n  newtop: [x y]\n"}
    for name, text in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)
    out = app / "out"
    code, stdout, err = run_hpsearch(["--search_file=search.yaml", "--run_cwd=.",
                                      f"--out_dir={out}", "--visible_gpus=-1"], app, timeout=300)
    assert code == 0, err
    (record,) = run_records(out)
    run_out = out / "runs" / record["run_id"] / "out"
    assert yaml.safe_load((run_out / ".hydra" / "overrides.yaml").read_text()) == [
        "seed=1", "top=2", "model.enc.depth=3", "+model.enc.width=4", "store.host=db.example",
        "+store.port=5432", "+newtop='x y'"]
    assert json.loads((run_out / "config.json").read_text()) == {
        "seed": 1, "top": 2, "model": {"enc": {"depth": 3, "width": 4}},
        "store": {"host": "db.example", "port": 5432}, "newtop": "x y"}


@pytest.mark.parametrize("settings, words", [
    ("hydra_config: conf/config.yaml\n", "add arg_format: hydra (--arg_format=hydra) or drop it"),
    ("arg_format: hydra\nconfig_template: conf/model/small.yaml\n", "drop config_template"),
    ("arg_format: yaml\n", "arg_format 'yaml' is not an argument format; use flags or hydra"),
    ("arg_format: hydra\nhydra_config: conf/nothere.yaml\n", "does not exist"),
])
def test_bad_hydra_settings_are_one_line(app, settings, words):
    (app / "search.yaml").write_text("script: app.py\nmetrics: [objective]\n"
                                     "parameters: {x: [0.5]}\n" + settings)
    assert words in one_line_error(app)
