"""Search files: what a good one becomes, hpogrid's spellings, and every bad input's line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hpsearch.errors import UsageError
from hpsearch.spec.distributions import Distribution
from hpsearch.spec.gridmodule import resolve_algorithm
from hpsearch.spec.searchfile import load_search_file

HEAD = """\
script: train.py
metrics: [val_loss, val_acc]
"""

FULL = HEAD + """\
summary_file: perf.txt
objective: val_loss
direction: minimize
algorithm: tpe
algorithm_options: {n_startup_trials: 5}
num_trials: 100
seed: 42
out_arg: out
parameters:
  lr:         {method: loguniform, low: 1.0e-5, high: 1.0e-1}
  width:      {method: qloguniform, low: 16, high: 1024, q: 16}
  batch_size: {method: categorical, categories: [32, 64, 128]}
  optimizer:  [adam, sgd]
  epochs: 10
  nested:     {method: uniform, dimension: {low: 0, high: 1}}
conditions:
  - [{optimizer: [sgd]}, {momentum: [0.0, 0.9]}]
"""


def write(tmp_path: Path, text: str, name: str = "search.yaml") -> Path:
    (tmp_path / "train.py").write_text("")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, name: str = "search.yaml"):
    return load_search_file(write(tmp_path, text, name), tmp_path)


def test_full_file(tmp_path: Path) -> None:
    spec = load(tmp_path, FULL)
    p = spec.parameters
    assert isinstance(p["lr"], Distribution) and p["lr"].method == "loguniform"
    assert (p["width"].method, p["width"].q) == ("qloguniform", 16)
    assert p["batch_size"] == [32, 64, 128]
    assert p["optimizer"] == ["adam", "sgd"]
    assert p["epochs"] == [10]
    assert (p["nested"].low, p["nested"].high) == (0, 1)
    assert list(p) == ["lr", "width", "batch_size", "optimizer", "epochs", "nested"]
    assert spec.conditions == [({"optimizer": ["sgd"]}, {"momentum": [0.0, 0.9]})]
    assert spec.summary_keywords == ["val_loss", "val_acc", "finished"]
    assert spec.objectives == ["val_loss"] and spec.directions == ["minimize"]
    assert (spec.algorithm, spec.num_trials, spec.seed) == ("tpe", 100, 42)
    assert spec.algorithm_options == {"n_startup_trials": 5}
    assert (spec.summary_filename, spec.out_arg) == ("perf.txt", "out")
    assert spec.source_kind == "search_file" and spec.source_file == tmp_path / "search.yaml"
    assert spec.command.script == "train.py"
    assert spec.config_keys()[-1] == "momentum"


def test_defaults(tmp_path: Path) -> None:
    spec = load(tmp_path, HEAD + "parameters: {x: [1, 2]}\n")
    assert spec.summary_filename == "performance_overview.txt"
    assert spec.out_arg == "out_dir"
    assert spec.objectives == ["val_loss"] and spec.directions == ["minimize"]
    assert (spec.algorithm, spec.num_trials, spec.seed) == ("grid", None, None)


def test_multi_objective(tmp_path: Path) -> None:
    spec = load(tmp_path, HEAD + "objective: [val_loss, val_acc]\n"
                "direction: [minimize, maximize]\nparameters: {x: [1, 2]}\n")
    assert spec.multi_objective and spec.directions == ["minimize", "maximize"]
    one_word = load(tmp_path, HEAD + "objective: [val_loss, val_acc]\ndirection: maximize\n"
                    "parameters: {x: [1, 2]}\n")
    assert one_word.directions == ["maximize", "maximize"]


def test_json_file(tmp_path: Path) -> None:
    data = {"script": "train.py", "metrics": ["loss"], "algorithm": "random",
            "num_trials": 3, "parameters": {"lr": {"method": "loguniform", "low": 1e-5,
                                                   "high": 1e-1}, "act": ["relu", "tanh"]}}
    spec = load(tmp_path, json.dumps(data, indent=1), "search.json")
    assert spec.parameters["lr"].low == 1e-5 and spec.parameters["act"] == ["relu", "tanh"]


# hpogrid's examples (seeds/hpogrid.md), pasted unchanged
HPOGRID_JSON = ('{ "lr":{"method":"loguniform","dimension":{"low":1e-5,"high":1e-2, "base":10}},'
                '"batchsize":{"method":"categorical","dimension":{"categories":[32,64,128,256,'
                '512,1024]}},"num_layers":{"method":"uniformint","dimension":{"low":3,"high":10}}'
                ',"momentum":{"method":"uniform","dimension":{"low":0.5,"high":1.0}} }')
HPOGRID_UPDATE_JSON = '{"new_hp":{"method":"lognormal","dimension":{"mu":1,"sigma":1}}}'
HPOGRID_YAML = """\
  hidden:
    method: categorical
    dimension:
      categories:
      - 32
      - 64
      - 128
      grid_search: 0
  beta_1:
    method: uniform
    dimension:
      low: 0.5
      high: 1
  batchsize:
    method: categorical
    dimension:
      categories:
      - 32
      - 64
      - 128
      - 256
      - 512
      grid_search: 0
  lr:
    method: loguniform
    dimension:
      low: 1.0e-05
      high: 0.1
"""


def check_hpogrid_json_space(parameters: dict) -> None:
    assert (parameters["lr"].method, parameters["lr"].low, parameters["lr"].base) == (
        "loguniform", 1e-5, 10)
    assert parameters["batchsize"] == [32, 64, 128, 256, 512, 1024]
    assert (parameters["num_layers"].method, parameters["num_layers"].high) == ("uniformint", 10)
    assert parameters["momentum"].low == 0.5


def test_hpogrid_json_space_in_yaml(tmp_path: Path) -> None:
    spec = load(tmp_path, HEAD + f"parameters: {HPOGRID_JSON}\n")
    check_hpogrid_json_space(spec.parameters)


def test_hpogrid_json_space_in_json(tmp_path: Path) -> None:
    text = '{"script": "train.py", "metrics": ["loss"], "parameters": ' + HPOGRID_JSON + "}"
    check_hpogrid_json_space(load(tmp_path, text, "search.json").parameters)


def test_hpogrid_update_json_space(tmp_path: Path) -> None:
    spec = load(tmp_path, HEAD + f"parameters: {HPOGRID_UPDATE_JSON}\n")
    assert (spec.parameters["new_hp"].method, spec.parameters["new_hp"].mu) == ("lognormal", 1)


def test_hpogrid_yaml_space(tmp_path: Path) -> None:
    spec = load(tmp_path, HEAD + "algorithm: random\nnum_trials: 5\nparameters:\n"
                + HPOGRID_YAML)
    p = spec.parameters
    assert p["hidden"] == [32, 64, 128] and p["batchsize"][-1] == 512
    assert (p["beta_1"].low, p["beta_1"].high) == (0.5, 1)
    assert (p["lr"].low, p["lr"].high) == (1e-5, 0.1)


# -- bad inputs: one UsageError line each -----------------------------------------------------
BAD = {
    "no such method": (HEAD + "parameters: {lr: {method: logunifrom, low: 1, high: 2}}",
                       "method 'logunifrom' does not exist; use one of categorical, uniform"),
    "low >= high": (HEAD + "parameters: {lr: {method: uniform, low: 2, high: 1}}",
                    "low (2) must be less than high (1)"),
    "log low <= 0": (HEAD + "parameters: {lr: {method: loguniform, low: 0, high: 1}}",
                     "must be > 0 for a log scale; use uniform"),
    "q <= 0": (HEAD + "parameters: {w: {method: quniform, low: 0, high: 8, q: 0}}",
               "q (0) must be > 0"),
    "categorical without values": (HEAD + "parameters: {b: {method: categorical, "
                                   "categories: []}}", "categories must be a non-empty list"),
    "empty list": (HEAD + "parameters: {b: []}", "is an empty list; give at least one value"),
    "no value": (HEAD + "parameters: {b: }", "has no value; give a value"),
    "objective not a metric": (HEAD + "objective: acc\nparameters: {x: [1]}",
                               "objective 'acc' is not among the metrics ['val_loss', "
                               "'val_acc']; add it there"),
    "bad direction": (HEAD + "direction: up\nparameters: {x: [1]}",
                      "direction 'up' must be minimize or maximize"),
    "directions do not pair": (HEAD + "direction: [minimize, maximize]\nparameters: {x: [1]}",
                               "1 objective(s) but 2 direction(s)"),
    "unknown setting": (HEAD + "trials: 5\nparameters: {x: [1]}",
                        "unknown setting 'trials'; valid settings are script, summary_file"),
    "unknown algorithm": (HEAD + "algorithm: bayes\nparameters: {x: [1]}",
                          "algorithm 'bayes' does not exist; use one of grid, random"),
    "missing parameters": (HEAD, "sets no 'parameters'; add e.g. parameters:"),
    "missing script": ("metrics: [a]\nparameters: {x: [1]}", "sets no 'script'"),
    "script not found": ("script: nope.py\nmetrics: [a]\nparameters: {x: [1]}",
                         "script 'nope.py' not found in --run_cwd"),
    "num_trials 0": (HEAD + "num_trials: 0\nparameters: {x: [1]}",
                     "num_trials must be a whole number >= 1, not 0"),
    "options not a mapping": (HEAD + "algorithm_options: [1]\nparameters: {x: [1]}",
                              "algorithm_options must be a mapping"),
    "metrics not names": ("script: train.py\nmetrics: 3\nparameters: {x: [1]}",
                          "metrics must be a name or a list of names"),
    "parameter named like a metric": (HEAD + "parameters: {val_acc: [1]}",
                                      "is also a summary keyword"),
    "not a mapping": ("- script: train.py\n", "must hold a mapping of settings"),
    "yaml syntax": (HEAD + "parameters:\n  lr: {method: uniform, low: 0, high: 1\n  x: [1]\n",
                    "is not valid YAML: "),
    "key twice": (HEAD + "parameters: {x: [1], y: [2], x: [3]}",
                  "key 'x' appears twice in one mapping (keep one of them) at line 3"),
    "anchor inside itself": (HEAD + "parameters: {x: &a [1, *a]}",
                             "holds a list or mapping that contains itself"),
    "150 levels": (HEAD + "parameters: {x: [" + "[" * 150 + "]" * 150 + "]}",
                   "nests lists or mappings more than 100 levels deep; flatten it"),
    "normal beyond floats": (HEAD + "parameters: {x: {method: normal, mu: 1.0e308, "
                             "sigma: 1.0e308}}", "give draws beyond the largest float"),
    "q too small": (HEAD + "parameters: {x: {method: quniform, low: 0, high: 1.0e300, "
                    "q: 1.0e-20}}", "q (1e-20) is too small for values up to 1e+300"),
    "summary file leaves its folder": (HEAD + "summary_file: logs/../../x.txt\n"
                                       "parameters: {x: [1]}", "inside the run's out dir"),
    "metric with a space": ("script: train.py\nmetrics: ['val loss']\nparameters: {x: [1]}",
                            "must be one word"),
    "parameter with a space": (HEAD + "parameters: {'l r': [1]}", "not a flag name"),
    "parameter with a leading dash": (HEAD + "parameters: {-lr: [1]}", "not a flag name"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    with pytest.raises(UsageError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert expected in message and "\n" not in message, message


def test_names_paths_and_merge_keys_that_stay_accepted(tmp_path: Path) -> None:
    """Key paths (``.``, ``:``, list indices), ``-`` inside a name, a summary file in a
    subfolder, and a YAML merge key whose value a key of the mapping overrides."""
    spec = load(tmp_path, """\
        script: train.py
        summary_file: logs/./perf.txt
        metrics: [val_loss, acc@1, top-5]
        parameters:
          optimizer.lr: [0.1]
          model:layers:0:units: [8]
          num-layers: [2]
          y: &base {method: uniform, low: 0, high: 1}
          x: {<<: *base, high: 2}
        """)
    assert list(spec.parameters) == ["optimizer.lr", "model:layers:0:units", "num-layers", "y",
                                     "x"]
    assert (spec.parameters["x"].low, spec.parameters["x"].high) == (0, 2)
    assert spec.summary_filename == "logs/./perf.txt"
    assert spec.summary_keywords == ["val_loss", "acc@1", "top-5", "finished"]


def test_yaml_error_names_the_line(tmp_path: Path) -> None:
    text = HEAD + "parameters:\n  lr: [1, 2\n  x: [1]\nseed: 1\n"
    with pytest.raises(UsageError, match=r"not valid YAML: .* at line \d+ column \d+; fix it"):
        load(tmp_path, text)
    with pytest.raises(UsageError, match=r"at line 5 column 4; fix it there"):
        load(tmp_path, HEAD + "parameters:\n  x: [1]\n   y: 2\n")


def test_json_error_names_the_line(tmp_path: Path) -> None:
    # hpogrid's own 'recreate' example has a bracket typo: the line and column are named
    broken = ('{"script": "train.py", "metrics": ["loss"], "parameters":\n'
              '{ "lr":{"method":"categorical", "dimension":{"categories": [1e-4,1e-3,1e-2,'
              '1e-1}}}}')
    with pytest.raises(UsageError, match=r"is not valid JSON: .* at line 2 column \d+; fix"):
        load(tmp_path, broken, "search.json")


def test_missing_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"search file .*nope.yaml does not exist; pass"):
        load_search_file(tmp_path / "nope.yaml", tmp_path)
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError, match=r"cannot read search file .*; check its"):
        load_search_file(path, tmp_path)


# -- the algorithm, once the command line had its say ----------------------------------------
def test_resolve_applies_overrides(tmp_path: Path) -> None:
    spec = load(tmp_path, FULL)
    resolved = resolve_algorithm(spec, "nsga2", 7, 3)
    assert (resolved.algorithm, resolved.num_trials, resolved.seed) == ("nsga2", 7, 3)
    assert resolve_algorithm(spec, None, None, None) == spec


@pytest.mark.parametrize(("settings", "override", "expected"), [
    ("algorithm: tpe\n", {}, "algorithm tpe needs a number of trials; set num_trials"),
    ("algorithm: grid\n", {}, "algorithm grid cannot walk parameter 'lr' (loguniform("),
    ("algorithm: tpe\nnum_trials: 5\n", {"algorithm": "grid"}, "algorithm grid cannot walk"),
    ("objective: [val_loss, val_acc]\nnum_trials: 5\n", {"algorithm": "cmaes"},
     "algorithm cmaes optimises one objective, not 2; use one of grid, random, qmc, tpe, "
     "nsga2 for several"),
    ("objective: [val_loss, val_acc]\nnum_trials: 5\nalgorithm: gp\n", {},
     "algorithm gp optimises one objective"),
    ("algorithm: random\nnum_trials: 5\nalgorithm_options: {n_startup_trials: 2}\n",
     {}, "algorithm random takes no algorithm_options"),
    ("", {"algorithm": "anneal"}, "--algorithm: algorithm 'anneal' does not exist"),
])
def test_resolve_refuses(tmp_path: Path, settings: str, override: dict, expected: str) -> None:
    spec = load(tmp_path, HEAD + settings + "parameters: {lr: {method: loguniform, low: 1.0e-5,"
                " high: 0.1}, act: [relu, tanh]}\n")
    with pytest.raises(UsageError) as info:
        resolve_algorithm(spec, override.get("algorithm"), override.get("num_trials"), None)
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_an_algorithm_from_the_command_line_drops_the_files_options(tmp_path: Path) -> None:
    spec = load(tmp_path, HEAD + "algorithm: tpe\nnum_trials: 5\n"
                "algorithm_options: {n_startup_trials: 2}\nparameters: {x: [1, 2]}\n")
    resolved = resolve_algorithm(spec, "random", None, None)
    assert resolved.algorithm_options == {} and "are not used" in resolved.warnings[-1]
    assert resolve_algorithm(spec, "tpe", None, None).algorithm_options == {
        "n_startup_trials": 2}


def test_resolve_accepts(tmp_path: Path) -> None:
    only_lists = load(tmp_path, HEAD + "parameters: {act: [relu, tanh], n: [1, 2, 3]}\n")
    for algorithm in ("cmaes", "gp", "nsga2", "grid", "random", "qmc", "tpe"):
        assert resolve_algorithm(only_lists, algorithm, 4, None).algorithm == algorithm
    several = load(tmp_path, HEAD + "objective: [val_loss, val_acc]\n"
                   "parameters: {x: {method: uniform, low: 0, high: 1}}\n")
    for algorithm in ("tpe", "nsga2", "random", "qmc"):
        assert resolve_algorithm(several, algorithm, 4, None).multi_objective


def test_a_grid_modules_categorical_is_the_list_it_chooses_from(tmp_path: Path) -> None:
    from hpsearch.spec.gridmodule import load_spec

    (tmp_path / "train.py").write_text("")
    (tmp_path / "conf.py").write_text(
        "from hpsearch.space import categorical, loguniform\n"
        "grid = {'act': categorical(['relu', 'tanh']), 'lr': loguniform(1e-4, 1e-1)}\n"
        "_SCRIPT_NAME = 'train.py'\n_SUMMARY_FILENAME = 'p.txt'\n"
        "_SUMMARY_KEYWORDS = ['loss', 'finished']\n_ALGORITHM = 'random'\n_NUM_TRIALS = 3\n")
    spec = load_spec(str(tmp_path / "conf.py"), tmp_path)
    assert spec.parameters["act"] == ["relu", "tanh"]
    assert (spec.algorithm, spec.num_trials) == ("random", 3)
    with pytest.raises(UsageError, match="algorithm grid cannot walk parameter 'lr'"):
        resolve_algorithm(spec, "grid", None, None)


EXAMPLES = {"grid module": ["logreg", "quadratic", "gpu_torch"],
            "search file": ["logreg/search.yaml", "curves/search.yaml", "hpogrid/project.yaml"]}


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k, names in EXAMPLES.items()
                                            for n in names])
def test_every_example_sim_passes_the_checks(kind: str, name: str) -> None:
    """The searches under sims/ are what the README tells users to run: each one loads (the
    PyTorch example's parameter 'steps' was a results column: renamed 'train_steps')."""
    from conftest import REPO

    from hpsearch.engine.launch import SearchSource, load_search

    if kind == "grid module":
        source = SearchSource(grid_module=str(REPO / "sims" / name / "hpsearch_config.py"))
        run_cwd = REPO / "sims" / name
    else:
        source = SearchSource(search_file=REPO / "sims" / name)
        run_cwd = (REPO / "sims" / name).parent
    assert load_search(source, run_cwd).parameters
