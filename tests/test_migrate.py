"""hyper_opt and hpogrid files, as their READMEs show them, become searches here.

The files below are the examples of hyper_opt's README (its hyperparameter configuration,
there written as a bullet list, here in the YAML it describes) and hpogrid's README (its
three project files and its JSON search space), pasted unchanged.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, run_hpsearch
from test_searchfile import HPOGRID_YAML  # hpogrid's MNIST_CNN example search space

from hpsearch.backends.pbs.backend import pbs_directives
from hpsearch.backends.slurm.backend import slurm_directives
from hpsearch.cli.app import (
    build_options,
    main_group,
    native_flags,
    search_source,
    with_file_settings,
)
from hpsearch.errors import UsageError
from hpsearch.spec.distributions import Distribution
from hpsearch.spec.migrate import format_of, load_search_file, suggested_options
from hpsearch.spec.migrate.hyper_opt import _hours

HYPER_OPT = """\
log:
  save_path: "path/to/data/log.txt"
slurm:
  jobs: 20
  batch:
    account: "NAML0001"
    gres: "gpu:v100:1"
    mem: "128G"
    n: 8
    t: "12:00:00"
    J: "hyper_opt"
    o: "hyper_opt.out"
    e: "hyper_opt.err"
optuna:
  name: "holodec_optimization.db"
  reload: 0
  objective: "examples/torch/objective.py"
  metric: "val_loss"
  direction: "minimize"
  n_trials: 500
  gpu: True
  save_path: 'test'
  sampler:
    type: "TPESampler"
  parameters:
    num_dense:
      type: "int"
      settings:
        name: "num_dense"
        low: 0
        high: 10
    dropout:
      type: "float"
      settings:
        name: "dr"
        low: 0.0
        high: 0.5
    optimizer:learning_rate:
      type: "loguniform"
      settings:
        name: "lr"
        low: 0.0000001
        high: 0.01
"""

HOLODEC_MODEL = """\
model:
  image_channels: 1
  hidden_dims: [3, 94, 141, 471, 425, 1122]
  z_dim: 1277
  dense_hidden_dims: [1000]
  dense_dropouts: [0.0]
  tasks: ["x", "y", "z", "d", "binary"]
optimizer:
  type: "lookahead-diffgrad"
  learning_rate: 0.000631
  weight_decay: 0.0
trainer:
  start_epoch: 0
  epochs: 1
  clip: 1.0
  alpha: 1.0
  beta: 0.1
  path_save: "test"
"""

#: hpogrid's container (one line in its README; split here for the line length)
CONTAINER = ("/cvmfs/unpacked.cern.ch/gitlab-registry.cern.ch/aml/hyperparameter-optimization/"
             "alkaid-qt/hpogrid:latest")

HPOGRID_SIMPLE = f"""\
project_name: simple_objective
scripts_path: /afs/cern.ch/work/c/chlcheng/Repository/hpogrid/examples/scripts/simple_objective.py
model_config:
  script: simple_objective.py
  model: simple_objective
search_space:
  height:
    method: uniform
    dimension:
      low: -100
      high: 100
  width:
    method: uniform
    dimension:
      low: 0
      high: 20
hpo_config:
  algorithm: hyperopt
  metric: loss
  mode: min
  scheduler: asynchyperband
  num_trials: 200
  max_concurrent: 3

grid_config:
  site: ANALY_MANC_GPU_TEST,ANALY_MWT2_GPU,ANALY_BNL_GPU_ARC
  container: {CONTAINER}
  inDS: null
"""

HPOGRID_MNIST = f"""\
project_name: MNIST_CNN
scripts_path: /afs/cern.ch/work/c/chlcheng/Repository/hpogrid/examples/scripts/MNIST_CNN
model_config:
  script: mnist_cnn.py
  model: MNIST_CNN
search_space:
{HPOGRID_YAML}hpo_config:
  algorithm: nevergrad
  metric: loss
  mode: min
  num_trials: 200
  max_concurrent: 3
  algorithm_param:
    method: DoubleFastGADiscreteOnePlusOne
grid_config:
  site: ANALY_MANC_GPU_TEST,ANALY_MWT2_GPU,ANALY_BNL_GPU_ARC
  container: {CONTAINER}
  inDS: null
"""

HPOGRID_BBYY = f"""\
project_name: BBYY_SM
scripts_path: /afs/cern.ch/work/c/chlcheng/Repository/hpogrid/examples/scripts/BBYY/
model_config:
  script: train_bdt.py
  model: yybb_bdt
  param:
    channel: SM
    num_round: 10000
search_space:
  min_child_weight:
    method: uniformint
    dimension:
      low: 0
      high: 100
  colsample_bytree:
    method: uniform
    dimension:
      low: 0.3
      high: 1
  scale_pos_weight:
    method: uniform
    dimension:
      low: 0
      high: 9
  max_delta_step:
    method: uniform
    dimension:
      low: 0
      high: 20
  subsample:
    method: uniform
    dimension:
      low: 0.5
      high: 1
  eta:
    method: uniform
    dimension:
      low: 0.01
      high: 0.05
  alpha:
    method: uniform
    dimension:
      low: 0
      high: 1
  lambda:
    method: uniform
    dimension:
      low: 0
      high: 10
  max_depth:
    method: uniformint
    dimension:
      low: 3
      high: 20
  gamma:
    method: uniform
    dimension:
      low: 0
      high: 10
  max_bin:
    method: uniformint
    dimension:
      low: 10
      high: 500
hpo_config:
  algorithm: nevergrad
  metric: auc
  mode: max
  scheduler: asynchyperband
  num_trials: 1000
  max_concurrent: 3
  algorithm_param:
    method: DoubleFastGADiscreteOnePlusOne
grid_config:
  site: ANALY_MANC_GPU_TEST,ANALY_MWT2_GPU,ANALY_BNL_GPU_ARC
  container: {CONTAINER}
  inDS: user.chlcheng:user.chlcheng.hpo.bbyy.dataset.01
"""

#: hpogrid's search space in its JSON spelling (its README's `search_space create` example)
HPOGRID_JSON_SPACE = ('{ "lr":{"method":"loguniform","dimension":{"low":1e-5,"high":1e-2, '
                      '"base":10}}, "batchsize":{"method":"categorical","dimension":'
                      '{"categories":[32,64,128,256,512,1024]}}, "num_layers":{"method":'
                      '"uniformint","dimension":{"low":3,"high":10}}, "momentum":{"method":'
                      '"uniform","dimension":{"low":0.5,"high":1.0}} }')

FUNCTION = "def {name}(config, reporter):\n    reporter(loss=1.0)\n"


def write(tmp_path: Path, name: str, text: str, scripts: dict[str, str] | None = None) -> Path:
    for script, body in (scripts or {}).items():
        (tmp_path / script).write_text(body)
    path = tmp_path / name
    path.write_text(text)
    return path


# -- hyper_opt ----------------------------------------------------------------------
def test_hyper_opt_file_from_its_readme(tmp_path: Path) -> None:
    path = write(tmp_path, "hyperparameters.yml", HYPER_OPT, {"train.py": ""})
    model = write(tmp_path, "model.yml", HOLODEC_MODEL)
    assert format_of(__import__("yaml").safe_load(HYPER_OPT)) == "hyper_opt"
    spec = load_search_file(path, tmp_path, overrides={"script": "train.py",
                                                       "config_template": str(model)})
    p = spec.parameters
    assert list(p) == ["num_dense", "dropout", "optimizer:learning_rate"]
    assert (p["num_dense"].method, p["num_dense"].low, p["num_dense"].high) == (
        "uniformint", 0, 10)
    assert (p["dropout"].method, p["dropout"].high) == ("uniform", 0.5)
    assert (p["optimizer:learning_rate"].method, p["optimizer:learning_rate"].low) == (
        "loguniform", 1e-07)
    assert spec.objectives == ["val_loss"] and spec.directions == ["minimize"]
    assert (spec.algorithm, spec.num_trials) == ("tpe", 500)
    assert spec.summary_keywords == ["val_loss", "finished"]
    config = spec.command.config_file
    assert config is not None and config.paths == {
        "optimizer:learning_rate": ("optimizer", "learning_rate")}  # the others stay flags
    note = next(w for w in spec.warnings if w.startswith("hyper_opt settings not used"))
    assert "optuna.reload" in note and "optuna.objective" in note and "log" in note


def test_hyper_opt_without_script_explains_the_equivalent(tmp_path: Path) -> None:
    path = write(tmp_path, "hyperparameters.yml", HYPER_OPT)
    rc, _, err = run_hpsearch([f"--search_file={path}", "--visible_gpus=-1",
                               f"--out_dir={tmp_path / 'out'}"], tmp_path)
    assert rc == 2 and err.count("\n") == 1
    assert "examples/torch/objective.py) is a Python class" in err
    assert "pass --script=train.py" in err and "--config=" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("parameter", "expected"), [
    ({"type": "categorical", "settings": {"name": "a", "choices": ["relu", "tanh"]}},
     ["relu", "tanh"]),
    ({"type": "discrete_uniform", "settings": {"name": "a", "low": 0, "high": 1, "q": 0.25}},
     ("quniform", 0, 1, 0.25)),
    ({"type": "float", "settings": {"low": 1e-4, "high": 1, "log": True}},
     ("loguniform", 1e-4, 1, None)),
    ({"type": "float", "settings": {"low": 0, "high": 1, "step": 0.1}},
     ("quniform", 0, 1, 0.1)),
    ({"type": "int", "settings": {"low": 2, "high": 64, "step": 2}}, ("quniform", 2, 64, 2)),
    ({"type": "int", "settings": {"low": 1, "high": 64, "log": True}},
     ("qloguniform", 1, 64, 1)),
    ({"type": "int", "settings": {"low": 1, "high": 5, "step": 1}}, ("uniformint", 1, 5, None)),
    ({"type": "uniform", "settings": {"low": -1, "high": 1}}, ("uniform", -1, 1, None)),
    ({"type": "loguniform", "settings": {"low": 1e-3, "high": 1}},
     ("loguniform", 1e-3, 1, None)),
])
def test_hyper_opt_parameter_types(tmp_path: Path, parameter: dict, expected) -> None:
    text = json.dumps({"optuna": {"metric": "loss", "parameters": {"x": parameter}}})
    spec = load_search_file(write(tmp_path, "h.json", text, {"t.py": ""}), tmp_path,
                            overrides={"script": "t.py"})
    got = spec.parameters["x"]
    if isinstance(got, Distribution):
        got = (got.method, got.low, got.high, got.q)
    assert got == expected


@pytest.mark.parametrize(("parameter", "sampler", "expected"), [
    ({"type": "normal", "settings": {}}, None, "type 'normal' is not one of categorical"),
    ({"type": "int", "settings": {"low": 1}}, None, "high is missing"),
    ({"type": "float", "settings": {"low": 0, "high": 1, "logg": True}}, None,
     "logg is unknown"),
    ({"type": "float", "settings": {"low": 1e-3, "high": 1, "log": True, "step": 0.1}}, None,
     "step and log cannot go together"),
    ({"type": "int", "settings": {"low": 1, "high": 9, "step": 2}}, None,
     "make low a multiple of it"),
    ({"type": "uniform", "settings": {"low": 1, "high": 0}}, None, "must be less than high"),
    ({"type": "uniform", "settings": {"low": 0, "high": 1}}, {"type": "BruteForceSampler"},
     "BruteForceSampler' has no counterpart here; use one of TPESampler"),
])
def test_hyper_opt_bad_inputs(tmp_path: Path, parameter: dict, sampler, expected: str) -> None:
    optuna = {"metric": "loss", "parameters": {"x": parameter}}
    if sampler:
        optuna["sampler"] = sampler
    path = write(tmp_path, "h.json", json.dumps({"optuna": optuna}), {"t.py": ""})
    with pytest.raises(UsageError, match=expected):
        load_search_file(path, tmp_path, overrides={"script": "t.py"})


def test_hyper_opt_sampler_options_and_seed(tmp_path: Path) -> None:
    optuna = {"metric": ["a", "b"], "direction": ["minimize", "maximize"], "n_trials": 5,
              "sampler": {"type": "NSGAIISampler", "population_size": 8, "seed": 3},
              "parameters": {"x": {"type": "uniform", "settings": {"low": 0, "high": 1}}}}
    path = write(tmp_path, "h.json", json.dumps({"optuna": optuna}), {"t.py": ""})
    spec = load_search_file(path, tmp_path, overrides={"script": "t.py"})
    assert (spec.algorithm, spec.algorithm_options, spec.seed) == (
        "nsga2", {"population_size": 8}, 3)
    assert spec.objectives == ["a", "b"] and spec.directions == ["minimize", "maximize"]


def test_hyper_opt_slurm_section_maps_onto_our_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "hyperparameters.yml", HYPER_OPT)
    flags, notes = suggested_options(path, "slurm", native_flags("slurm"))
    assert flags == {"num_jobs": 20, "sbatch_option": ("account=NAML0001",),
                     "slurm_gres": "gpu:v100:1", "slurm_mem": "128G", "num_hours": 12.0}
    assert len(notes) == 1 and "slurm.batch.n (each run is one task" in notes[0]
    assert suggested_options(path, "lsf", native_flags("lsf"))[0] == {}
    assert "--scheduler=slurm" in suggested_options(path, "local", native_flags("local"))[1][0]
    assert [_hours(t, "x") for t in ("90", "30:00", "12:00:00", "2-06", "1-00:30:00")] == [
        1.5, 0.5, 12.0, 54.0, 24.5]
    with pytest.raises(UsageError, match="not a Slurm time"):
        _hours("noon", "x")


def test_command_line_flags_beat_the_file_and_the_file_beats_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "hyperparameters.yml", HYPER_OPT, {"train.py": ""})
    argv = [f"--search_file={path}", "--script=train.py", "--run_cluster",
            "--scheduler=slurm", "--slurm_mem=32G", "--sbatch_option=account=mine",
            f"--run_cwd={tmp_path}"]
    with main_group.make_context("hpsearch", argv) as ctx:
        params, notes = with_file_settings(dict(ctx.params), ctx,
                                           search_source(ctx.params, ctx))
    assert notes == [f"warning: hyper_opt file {path}: not used here: slurm.batch.n (each run "
                     "is one task of a job array); slurm.batch.J, slurm.batch.o, slurm.batch.e "
                     "(hpsearch names the jobs and their logs)",
                     "from hyperparameters.yml: --num_jobs=20 --slurm_gres=gpu:v100:1 "
                     "--num_hours=12.0"]
    options = build_options(params)
    assert (options.num_jobs, options.num_hours, options.slurm_gres) == (20, 12.0, "gpu:v100:1")
    directives = slurm_directives(options)
    assert "--mem=32G" in directives and "--account=mine" in directives
    assert "--time=720" in directives and "--gres=gpu:v100:1" in directives
    assert not any(d.startswith("--ntasks") or d.startswith("--job-name") for d in directives)


#: echo-opt's file (hyper_opt's successor on NCAR's Derecho): a pbs: section beside slurm:
ECHO_OPT = HYPER_OPT.replace("optuna:", """pbs:
  jobs: 10
  gpus_per_node: 4
  bash: ["source ~/.bashrc", "conda activate echo"]
  batch:
    l: ["select=1:ncpus=64:ngpus=4:mem=128GB", "walltime=12:00:00", "gpu_type=a100"]
    A: "NAML0001"
    q: "main"
    N: "echo_trial"
    o: "logs/"
    e: "logs/"
optuna:""", 1)


def test_echo_opt_pbs_section_maps_onto_our_pbs_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "hyperparameters.yml", ECHO_OPT, {"train.py": ""})
    flags, notes = suggested_options(path, "pbs", native_flags("pbs"))
    assert flags == {"num_jobs": 10, "job_setup": ("source ~/.bashrc", "conda activate echo"),
                     "pbs_ncpus": 64, "pbs_ngpus": 4, "pbs_mem": "128GB", "num_hours": 12.0,
                     "qsub_option": ("l=gpu_type=a100", "A=NAML0001"), "pbs_queue": "main"}
    assert len(notes) == 2 and "slurm: section is used with" in notes[0]
    assert "pbs.gpus_per_node (each run's job asks select's ngpus); pbs.batch.N, pbs.batch.o, " \
           "pbs.batch.e (hpsearch names the jobs and their logs)" in notes[1]
    assert "pbs: section is used with --run_cluster --scheduler=pbs" in suggested_options(
        path, "slurm", native_flags("slurm"))[1][-1]
    argv = [f"--search_file={path}", "--script=train.py", "--run_cluster", "--scheduler=pbs",
            "--pbs_queue=short", f"--run_cwd={tmp_path}"]
    with main_group.make_context("hpsearch", argv) as ctx:
        params, notes = with_file_settings(dict(ctx.params), ctx,
                                           search_source(ctx.params, ctx))
    options = build_options(params)
    assert (options.num_jobs, options.num_hours, options.pbs_ngpus, options.pbs_queue) == (
        10, 12.0, 4, "short")  # the command line beats the file
    assert options.job_setup == ("source ~/.bashrc", "conda activate echo")
    directives = pbs_directives(options)
    assert directives[:2] == ["-l select=1:ncpus=64:ngpus=4:mem=128gb", "-l walltime=12:00:00"]
    assert "-A NAML0001" in directives and "-l gpu_type=a100" in directives
    bad = write(tmp_path, "bad.yml", ECHO_OPT.replace("select=1:", "select=2:"))
    with pytest.raises(UsageError, match="each run's job is select=1"):
        suggested_options(bad, "pbs", native_flags("pbs"))

def test_hyper_opt_example_sim_runs_here_and_as_slurm_dry_run(tmp_path: Path) -> None:
    sim = REPO / "sims" / "hyper_opt"
    out = tmp_path / "out"
    args = [f"--search_file={sim / 'hyperparameters.yml'}",
            f"--config_template={sim / 'model.yml'}", "--script=train.py", f"--run_cwd={sim}",
            f"--out_dir={out}", "--visible_gpus=-1", "--num_searches=4", "--num_jobs=2"]
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 0, err
    assert "hyper_opt settings not used here" in err
    rows = (out / "search_results.csv").read_text().splitlines()
    assert rows[0].startswith("optimizer:learning_rate;model:dropout;trainer:epochs;"
                              "model:activation;val_loss;finished;status")
    assert len(rows) == 5 and all(";finished;" in r for r in rows[1:])
    for run_dir in (out / "runs").iterdir():
        copy = (run_dir / "model.yml").read_text()
        assert copy.startswith("# Model config of the toy trainer")
        assert f"--config={run_dir / 'model.yml'}" in (run_dir / "command.sh").read_text()
    # the slurm: section on a Slurm dry run (scontrol answers nothing here)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (fake / "scontrol").chmod(0o755)
    env_path = f"{fake}{os.pathsep}{os.environ['PATH']}"
    dry = [a for a in args if not a.startswith(("--visible_gpus", "--num_jobs"))]
    rc, script, err = _run_with_path([*dry, "--run_cluster", "--scheduler=slurm",
                                      "--dry_run"], tmp_path, env_path)
    assert rc == 0, err
    assert "from hyperparameters.yml: --num_jobs=4" in err
    for line in ("#SBATCH --account=NAML0001", "#SBATCH --gres=gpu:v100:1",
                 "#SBATCH --mem=16G", "#SBATCH --time=30"):
        assert line in script
    assert "%4" in script  # slurm.jobs -> --num_jobs: at most 4 tasks at once


def _run_with_path(args: list[str], cwd: Path, path: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    from conftest import hpsearch_env

    env = {**hpsearch_env(), "PATH": path}
    proc = subprocess.run([sys.executable, "-m", "hpsearch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


# -- hpogrid ------------------------------------------------------------------------
def test_hpogrid_simple_objective_project(tmp_path: Path) -> None:
    path = write(tmp_path, "simple.yaml", HPOGRID_SIMPLE,
                 {"simple_objective.py": FUNCTION.format(name="simple_objective")})
    spec = load_search_file(path, tmp_path)
    assert spec.command.module and spec.command.script == "hpsearch.objective_runner"
    assert spec.command.leading == ("simple_objective.py:simple_objective",
                                    "performance_overview.txt")
    assert (spec.parameters["height"].low, spec.parameters["height"].high) == (-100, 100)
    assert (spec.algorithm, spec.num_trials) == ("tpe", 200)
    assert spec.objectives == ["loss"] and spec.directions == ["minimize"]
    text = "\n".join(spec.warnings)
    assert "algorithm hyperopt runs as tpe" in text
    assert "scheduler asynchyperband runs as pruner: asha on the reporter's steps" in text
    assert spec.pruner.name == "asha" and spec.pruner.options["min_resource"] == 1
    assert "grid_config (PanDA sites, containers, datasets) is not supported" in text
    assert "scripts_path (pass --run_cwd=<its folder>)" in text
    assert suggested_options(path, "local", native_flags("local")) == ({"num_jobs": 3}, [])


def test_hpogrid_mnist_project_and_its_trainable_class(tmp_path: Path) -> None:
    path = write(tmp_path, "mnist.yaml", HPOGRID_MNIST,
                 {"mnist_cnn.py": "class MNIST_CNN:\n    pass\n"})
    with pytest.raises(UsageError, match="MNIST_CNN is a class .*wrap the class in one"):
        load_search_file(path, tmp_path)
    (tmp_path / "mnist_cnn.py").write_text(FUNCTION.format(name="MNIST_CNN"))
    spec = load_search_file(path, tmp_path)
    assert spec.parameters["hidden"] == [32, 64, 128]
    assert spec.parameters["lr"].method == "loguniform"
    assert spec.algorithm == "cmaes"
    assert any("nevergrad runs as cmaes" in w for w in spec.warnings)
    assert any("hpo_config.algorithm_param" in w for w in spec.warnings)


def test_hpogrid_bbyy_project_with_fixed_params(tmp_path: Path) -> None:
    path = write(tmp_path, "bbyy.yaml", HPOGRID_BBYY,
                 {"train_bdt.py": "def yybb_bdt(config):\n    return {'auc': 0.9}\n"})
    spec = load_search_file(path, tmp_path)
    assert len(spec.parameters) == 13
    assert spec.parameters["channel"] == ["SM"] and spec.parameters["num_round"] == [10000]
    assert spec.parameters["max_depth"].method == "uniformint"
    assert spec.directions == ["maximize"] and spec.num_trials == 1000
    # --script replaces model_config: the same project with a script taking flags
    (tmp_path / "bdt_cli.py").write_text("")
    spec = load_search_file(path, tmp_path, overrides={"script": "bdt_cli.py --fast"})
    assert (spec.command.script, spec.command.leading) == ("bdt_cli.py", ("--fast",))


def test_hpogrid_json_project_with_its_json_search_space(tmp_path: Path) -> None:
    project = {"model_config": {"script": "train.py", "model": "my_objective"},
               "search_space": json.loads(HPOGRID_JSON_SPACE),
               "hpo_config": {"algorithm": "random", "metric": "loss", "mode": "min",
                              "num_trials": 10}}
    path = write(tmp_path, "project.json", json.dumps(project),
                 {"train.py": FUNCTION.format(name="my_objective")})
    spec = load_search_file(path, tmp_path)
    assert spec.parameters["batchsize"] == [32, 64, 128, 256, 512, 1024]
    assert (spec.parameters["lr"].low, spec.parameters["lr"].base) == (1e-5, 10)
    assert spec.algorithm == "random" and spec.warnings == [
        "hpo_config scheduler asynchyperband (hpogrid's default) runs as pruner: asha on the "
        "reporter's steps"]
    assert spec.pruner.name == "asha"


@pytest.mark.parametrize(("change", "expected"), [
    ({"hpo_config": {"algorithm": "bohb"}}, None),
    ({"hpo_config": {"algorithm": "skopt", "metric": "loss"}}, None),
    ({"hpo_config": {"algorithm": "optuna"}}, "algorithm 'optuna' is not one of hpogrid's"),
    ({"hpo_config": {"mode": "lowest"}}, "mode 'lowest' must be min or max"),
    ({"hpo_config": {"max_concurrent": 0}}, None),
    ({"model_config": {"script": "train.py", "model": "nope"}},
     "defines no 'nope' at its top level \\(its functions: my_objective\\)"),
    ({"model_config": {"script": "absent.py", "model": "f"}}, "'absent.py' not found"),
    ({"model_config": {"model": "f"}}, "model_config names no script"),
    ({"model_config": {"script": "train.py", "model": "my_objective",
                       "param": {"x": 1}}}, "'x' is in model_config.param and in search_space"),
    ({"search_space": {}}, "has no search_space"),
])
def test_hpogrid_settings(tmp_path: Path, change: dict, expected: str | None) -> None:
    project = {"model_config": {"script": "train.py", "model": "my_objective"},
               "search_space": {"x": {"method": "uniform", "dimension": {"low": 0,
                                                                         "high": 1}}},
               "hpo_config": {"metric": "loss"}}
    for key, value in change.items():
        project[key] = {**project[key], **value} if key == "hpo_config" else value
    path = write(tmp_path, "project.json", json.dumps(project),
                 {"train.py": FUNCTION.format(name="my_objective")})
    if expected is None:
        spec = load_search_file(path, tmp_path)
        if change["hpo_config"].get("algorithm"):
            assert spec.algorithm == {"bohb": "tpe", "skopt": "gp"}[
                change["hpo_config"]["algorithm"]]
        else:
            with pytest.raises(UsageError, match="max_concurrent must be a whole number"):
                suggested_options(path, "local", native_flags("local"))
        return
    with pytest.raises(UsageError, match=expected):
        load_search_file(path, tmp_path)


def test_hpogrid_defaults_are_hpogrids(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        model_config: {script: train.py, model: my_objective}
        search_space: {x: {method: categorical, dimension: {categories: [1, 2]}}}
    """)
    (tmp_path / "train.py").write_text("def my_objective(config):\n    return {'accuracy': 1}\n")
    spec = load_search_file(write(tmp_path, "p.yaml", text), tmp_path)
    assert spec.objectives == ["accuracy"] and spec.directions == ["maximize"]
    assert (spec.algorithm, spec.num_trials) == ("random", 100)
