"""Config templates: nested keys patch a per-run copy; every bad key path is one line, exit 2.

The unit tests drive :mod:`hpsearch.spec.configfile` directly; the search tests run a real
``hpsearch`` subprocess over a sim that reads its ``--config`` and records what it got.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import run_hpsearch
from test_lsf_emulator import lsf  # noqa: F401  (fixture: the LSF emulator on PATH)

from hpsearch.errors import UsageError
from hpsearch.spec.configfile import load_config_file

TEMPLATE = """\
# the model config of a trainer
model:
  hidden_dims: [3, 94, 141]   # one per layer
  dense:
    - units: 64
      act: relu
    - units: 32
      act: relu
  tasks: ["x", "y"]
optimizer:
  type: "lookahead-diffgrad"
  learning_rate: 0.000631     # tuned
  weight_decay: 0.0
  eps: 1e-8
trainer:
  epochs: 1
  verbose: yes
lr.schedule: cosine
"""


def template(tmp_path: Path, text: str = TEMPLATE, name: str = "model.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path: Path, names: dict, allow_new_keys: bool = False, text: str = TEMPLATE,
         name: str = "model.yml", arg: str = "config"):
    return load_config_file(template(tmp_path, text, name), arg, allow_new_keys, names)


def test_deep_paths_lists_by_index_and_flags(tmp_path: Path) -> None:
    cf = load(tmp_path, {"optimizer:learning_rate": None, "model:dense:1:units": [16, 32],
                         "model.dense.0.act": ["tanh"], "trainer:epochs": [3],
                         "lr.schedule": ["step"], "seed": [1], "model:hidden_dims": [[8, 8]]})
    assert cf.paths == {"optimizer:learning_rate": ("optimizer", "learning_rate"),
                        "model:dense:1:units": ("model", "dense", 1, "units"),
                        "model.dense.0.act": ("model", "dense", 0, "act"),
                        "trainer:epochs": ("trainer", "epochs"),
                        "lr.schedule": ("lr.schedule",),
                        "model:hidden_dims": ("model", "hidden_dims")}
    assert "seed" not in cf.paths  # not in the template: stays a flag
    config = {"optimizer:learning_rate": 1e-07, "model:dense:1:units": 16,
              "model.dense.0.act": "tanh", "trainer:epochs": 3, "lr.schedule": "step",
              "seed": 1, "model:hidden_dims": [8, 8]}
    text = cf.patched(config)
    data = yaml.safe_load(text)  # PyYAML (YAML 1.1), as most trainers read it
    assert data["optimizer"]["learning_rate"] == 1e-07
    assert data["model"]["dense"] == [{"units": 64, "act": "tanh"}, {"units": 16, "act": "relu"}]
    assert data["model"]["hidden_dims"] == [8, 8]
    assert data["trainer"]["epochs"] == 3 and data["lr.schedule"] == "step"
    assert "seed" not in data


def test_types_comments_order_and_style_are_kept(tmp_path: Path) -> None:
    cf = load(tmp_path, {"optimizer:learning_rate": None, "optimizer:type": ["yes", "1e-3"],
                         "trainer:verbose": [False], "model:hidden_dims": [[1, 2]],
                         "trainer:epochs": [2]})
    text = cf.patched({"optimizer:learning_rate": 0.001, "optimizer:type": "yes",
                       "trainer:verbose": False, "model:hidden_dims": [1, 2],
                       "trainer:epochs": 2})
    lines = text.splitlines()
    assert lines[0] == "# the model config of a trainer"
    # flow style and the comment (in its column) kept, and the list's indentation
    assert "  hidden_dims: [1, 2]         # one per layer" in lines
    assert "    - units: 64" in lines
    assert any(ln.startswith("  learning_rate: 0.001") and ln.endswith("# tuned")
               for ln in lines)
    assert '  tasks: ["x", "y"]' in lines and "  eps: 1e-8" in lines  # untouched as written
    assert [ln.split(":")[0] for ln in lines if ln and ln[0] not in " #"] == [
        "model", "optimizer", "trainer", "lr.schedule"]
    data = yaml.safe_load(text)
    assert data["optimizer"]["type"] == "yes"  # quoted: YAML 1.1 would read a bool
    assert data["trainer"]["verbose"] is False and data["trainer"]["epochs"] == 2
    assert isinstance(data["optimizer"]["learning_rate"], float)
    # a text that looks like a number stays text; an untouched value is not requoted
    assert yaml.safe_load(cf.patched({"optimizer:type": "1e-3"}))["optimizer"]["type"] == "1e-3"
    assert "  verbose: yes" in cf.patched({}).splitlines()


def test_small_floats_read_as_floats_by_pyyaml(tmp_path: Path) -> None:
    cf = load(tmp_path, {"optimizer:learning_rate": None})
    for value in (1e-07, 1e-05, 2.5e-10, 1e20, 0.1, 3.0):
        text = cf.patched({"optimizer:learning_rate": value})
        assert yaml.safe_load(text)["optimizer"]["learning_rate"] == value


def test_quoted_text_loses_its_quotes_as_on_a_command_line(tmp_path: Path) -> None:
    cf = load(tmp_path, {"optimizer:type": ['"adam w"']})
    assert yaml.safe_load(cf.patched({"optimizer:type": '"adam w"'}))["optimizer"]["type"] \
        == "adam w"


def test_json_keeps_order_indent_and_types(tmp_path: Path) -> None:
    text = '{\n    "b": {"lr": 0.1, "layers": [1, 2]},\n    "a": true,\n    "n": 1\n}\n'
    cf = load(tmp_path, {"b:lr": None, "b:layers:1": [5], "a": [False]}, text=text,
              name="model.json")
    out = cf.patched({"b:lr": 0.25, "b:layers:1": 5, "a": False})
    assert json.loads(out) == {"b": {"lr": 0.25, "layers": [1, 5]}, "a": False, "n": 1}
    assert list(json.loads(out)) == ["b", "a", "n"]
    assert out.splitlines()[1].startswith('    "b"')


def test_new_keys_when_allowed(tmp_path: Path) -> None:
    cf = load(tmp_path, {"optimizer:momentum": [0.9], "scheduler:kind:name": ["cos"]},
              allow_new_keys=True)
    data = yaml.safe_load(cf.patched({"optimizer:momentum": 0.9,
                                      "scheduler:kind:name": "cos"}))
    assert data["optimizer"]["momentum"] == 0.9
    assert data["scheduler"] == {"kind": {"name": "cos"}}


def test_argv_words_drop_patched_parameters_and_add_the_path(tmp_path: Path) -> None:
    cf = load(tmp_path, {"optimizer:learning_rate": None, "trainer:epochs": [1], "seed": [1]})
    words = ["--seed=1", "--optimizer:learning_rate=0.1", "--trainer:epochs=1",
             "--config=/old/model.yml"]
    assert cf.argv_words(words, tmp_path / "r") == ["--seed=1",
                                                    f"--config={tmp_path / 'r' / 'model.yml'}"]


@pytest.mark.parametrize(("names", "allow", "expected"), [
    ({"optimizer:learnin_rate": None}, False,
     "no key 'learnin_rate' under optimizer (nearest: optimizer:learning_rate)"),
    ({"nope:x": [1]}, False, "keys there: model, optimizer, trainer, lr.schedule"),
    ({"optimizer.learnin_rate": None}, False, "nearest: optimizer.learning_rate"),
    ({"optimizer:type:x": [1]}, False, "is the value 'lookahead-diffgrad', not a mapping"),
    ({"optimizer:type:x": [1]}, True, "not a mapping"),
    ({"model:hidden_dims:3": [1]}, False, "model:hidden_dims in config template"),
    ({"model:hidden_dims:3": [1]}, True, "is a list of 3; '3' is not an index 0..2"),
    ({"model:dense:first": [1]}, False, "is a list of 2; 'first' is not an index 0..1"),
    ({"model::units": [1]}, False, "empty key between ':' separators"),
    ({":units": [1]}, False, "empty key"),
    ({"optimizer:a=b": [1]}, True, "cannot hold '='"),
    ({"optimizer:type": [(1, 2)]}, False, "the value (1, 2) cannot go into"),
    ({"config": [1], "trainer:epochs": [1]}, False, "would be passed as --config"),
])
def test_every_bad_key_path_is_one_line(tmp_path: Path, names, allow, expected) -> None:
    with pytest.raises(UsageError) as err:
        load(tmp_path, names, allow_new_keys=allow)
    message = str(err.value)
    assert expected in message, message
    assert "\n" not in message
    assert repr(next(iter(names))) in message or "config" in message


def test_dot_name_that_is_a_key_and_a_path_is_ambiguous(tmp_path: Path) -> None:
    text = "lr.decay: 0.1\nlr:\n  decay: 0.5\n"
    with pytest.raises(UsageError, match="ambiguous.*write 'lr:decay'"):
        load(tmp_path, {"lr.decay": [0.2]}, text=text)
    assert load(tmp_path, {"lr:decay": [0.2]}, text=text).paths == {"lr:decay": ("lr", "decay")}


@pytest.mark.parametrize(("text", "name", "expected"), [
    ("a: [1, 2\n", "model.yml", "is not valid YAML"),
    ('{"a": 1,}', "model.json", "is not valid JSON"),
    ("- 1\n- 2\n", "model.yml", "must hold a mapping of keys at the top"),
    ("a: 1\n", "run.json", "one of hpsearch's own files"),
    ('{"a": 1, "b": 2, "a": 3}', "model.json", "gives the key 'a' twice in one mapping"),
    ("a: " + "[" * 100000 + "]" * 100000 + "\n", "model.yml", "more than 100 levels deep"),
    ('{"a": ' + "[" * 100000 + "]" * 100000 + "}", "model.json", "more than 100 levels deep"),
    ("a: " + "[" * 150 + "]" * 150 + "\n", "model.yml", "more than 100 levels deep"),
])
def test_bad_templates(tmp_path: Path, text: str, name: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected) as info:
        load(tmp_path, {"a": [1]}, text=text, name=name)
    assert "\n" not in str(info.value)


def test_missing_template_and_bad_config_arg(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_config_file(tmp_path / "absent.yml", "config", False, {})
    with pytest.raises(UsageError, match="must be a flag name"):
        load(tmp_path, {}, arg="--config")


# -- real searches -----------------------------------------------------------------
#: a trainer that reads --config (PyYAML) and records it and its argv
TRAINER = """\
import json, os, sys
import yaml
args = dict(a[2:].partition("=")[::2] for a in sys.argv[1:])
with open(args["model_config"]) as f:
    conf = yaml.safe_load(f)
os.makedirs(args["out_dir"], exist_ok=True)
with open(os.path.join(args["out_dir"], "seen.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "conf": conf}, f)
if conf["optimizer"]["learning_rate"] > 0.5 and not os.path.exists("ok_now"):
    sys.exit(3)
loss = conf["optimizer"]["learning_rate"] * conf["trainer"]["epochs"]
with open(os.path.join(args["out_dir"], "performance_overview.txt"), "w") as f:
    f.write(f"loss {loss!r}\\nfinished 1\\n")
"""

SEARCH = """\
script: train.py
metrics: [loss]
config_template: model.yml
config_arg: model_config
parameters:
  optimizer:learning_rate: [0.1, 0.9]
  trainer.epochs: [2]
  seed: [7]
"""


def project(tmp_path: Path, search: str = SEARCH) -> Path:
    sim = tmp_path / "proj"
    sim.mkdir()
    (sim / "train.py").write_text(TRAINER)
    (sim / "model.yml").write_text(TEMPLATE)
    (sim / "search.yaml").write_text(textwrap.dedent(search))
    return sim


def seen(out: Path) -> list[tuple[Path, dict]]:
    """(run directory, what its trainer saw) for every run that started."""
    return [(path.parent.parent, json.loads(path.read_text()))
            for path in sorted((out / "runs").glob("*/out/seen.json"))]


def test_search_passes_each_run_its_patched_copy(tmp_path: Path) -> None:
    sim = project(tmp_path)
    out = tmp_path / "out"
    args = ["--search_file=proj/search.yaml", "--run_cwd=proj", f"--out_dir={out}",
            "--visible_gpus=-1", "--retries=1"]
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 1, err  # lr 0.9 fails twice
    runs = {record["conf"]["optimizer"]["learning_rate"]: (run_dir, record)
            for run_dir, record in seen(out)}
    assert set(runs) == {0.1, 0.9}
    run_dir, record = runs[0.1]
    assert record["argv"] == [f"--out_dir={run_dir / 'out'}", "--seed=7",
                              f"--model_config={run_dir / 'model.yml'}"]
    assert record["conf"]["trainer"]["epochs"] == 2
    assert (run_dir / "model.yml").read_text().startswith("# the model config of a trainer")
    # the failed run is retried by its journaled config; the copy is written again alike
    (sim / "ok_now").write_text("")
    failed = runs[0.9][0]
    before = (failed / "model.yml").read_text()
    (failed / "model.yml").unlink()
    rc, _, err = run_hpsearch([*args, "--rerun_failed"], tmp_path)
    assert rc == 0, err
    assert (failed / "model.yml").read_text() == before
    assert (failed / "attempts" / "2").is_dir()


def test_grid_module_template_and_command_line_template(tmp_path: Path) -> None:
    sim = project(tmp_path)
    (sim / "hpconf.py").write_text(textwrap.dedent("""\
        grid = {"optimizer:learning_rate": [0.1], "trainer:epochs": [3, 4]}
        _SCRIPT_NAME = "train.py"
        _SUMMARY_FILENAME = "performance_overview.txt"
        _SUMMARY_KEYWORDS = ["loss", "finished"]
        _CONFIG_TEMPLATE = "model.yml"
        _CONFIG_ARG = "model_config"
    """))
    out = tmp_path / "out"
    rc, _, err = run_hpsearch(["--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={out}",
                               "--visible_gpus=-1"], tmp_path)
    assert rc == 0, err
    assert sorted(record["conf"]["trainer"]["epochs"] for _, record in seen(out)) == [3, 4]
    # --config_template (relative to where hpsearch starts) replaces the module's
    other = tmp_path / "other.yml"
    other.write_text(TEMPLATE.replace("weight_decay: 0.0", "weight_decay: 0.5"))
    rc, _, err = run_hpsearch(["--grid_module=hpconf", "--run_cwd=proj",
                               f"--out_dir={tmp_path / 'out2'}", "--visible_gpus=-1",
                               "--config_template=other.yml"], tmp_path)
    assert rc == 0, err
    runs = seen(tmp_path / "out2")
    assert {record["conf"]["optimizer"]["weight_decay"] for _, record in runs} == {0.5}
    assert all((run_dir / "other.yml").is_file() for run_dir, _ in runs)


def test_dry_run_shows_what_each_run_s_copy_will_set(tmp_path: Path,
                                                      lsf: Path) -> None:  # noqa: F811
    """The copy ``--model_config=`` names is written only when its run starts: a dry run
    says, under each command line, what that copy will set (and writes nothing)."""
    project(tmp_path, SEARCH.replace("seed: [7]", "seed: [7]\n  optimizer:type: [adam]"))
    out = tmp_path / "out"
    rc, stdout, err = run_hpsearch(["--search_file=proj/search.yaml", "--run_cwd=proj",
                                    f"--out_dir={out}", "--visible_gpus=-1", "--dry_run",
                                    "--deterministic_search"], tmp_path)
    assert rc == 0, err
    lines = stdout.splitlines()
    assert len(lines) == 4, stdout
    for command, said, lr in zip(lines[::2], lines[1::2], ["0.1", "0.9"], strict=True):
        run_id = command.split("/runs/")[1].split("/")[0]
        assert command.endswith(f"--model_config={out}/runs/{run_id}/model.yml"), command
        assert said == (f"# run {run_id}: model.yml with optimizer:learning_rate={lr}, "
                        'trainer.epochs=2, optimizer:type="adam"'), stdout
    assert not out.exists()
    said = lines[1::2]
    rc, stdout, err = run_hpsearch(["--search_file=proj/search.yaml", "--run_cwd=proj",
                                    f"--out_dir={out}", "--dry_run", "--deterministic_search",
                                    "--run_cluster", "--scheduler=lsf"], tmp_path)
    assert rc == 0, err
    assert stdout.startswith("#!/bin/sh") and stdout.splitlines()[-2:] == said, stdout
    assert not out.exists()


@pytest.mark.parametrize(("good", "bad", "expected"), [
    ("optimizer:learning_rate", "optimizer:learnin_rate",
     "no key 'learnin_rate' under optimizer (nearest: optimizer:learning_rate)"),
    ("trainer.epochs", "trainer.epoch", "no key 'epoch' under trainer (nearest: "
                                        "trainer.epochs)"),
])
def test_bad_key_path_in_a_search_exits_2_and_writes_nothing(tmp_path: Path, good: str,
                                                            bad: str, expected: str) -> None:
    project(tmp_path, SEARCH.replace(good, bad))
    out = tmp_path / "out"
    rc, stdout, err = run_hpsearch(["--search_file=proj/search.yaml", "--run_cwd=proj",
                                    f"--out_dir={out}", "--visible_gpus=-1"], tmp_path)
    assert rc == 2, err
    assert expected in err
    assert err.count("\n") == 1 and err.startswith("hpsearch: error: ")
    assert not out.exists()
    rc, _, err = run_hpsearch(["--search_file=proj/search.yaml", "--run_cwd=proj",
                               f"--out_dir={out}", "--visible_gpus=-1", "--allow_new_keys",
                               "--dry_run"], tmp_path)
    assert rc == 0, err


@pytest.mark.parametrize("flag, words", [
    ("--allow_new_keys", "allow_new_keys is set but there is no config_template"),
    ("--config_arg=model_config", "config_arg 'model_config' is set but there is no "
                                  "config_template"),
])
def test_template_flags_without_a_template_are_one_line(tmp_path: Path, flag: str,
                                                        words: str) -> None:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "search.yaml").write_text("script: train.py\nmetrics: [loss]\n"
                                          "parameters: {lr: [0.1, 0.2]}\n")
    out = tmp_path / "out"
    rc, _, err = run_hpsearch(["--search_file=search.yaml", f"--out_dir={out}",
                               "--visible_gpus=-1", flag], tmp_path)
    assert rc == 2 and words in err and err.count("\n") == 1, err
    assert not out.exists()


def test_dotted_near_miss_of_a_key_is_one_line_not_a_flag(tmp_path: Path) -> None:
    """``optm.lr`` (the template has ``optim.lr``) would become ``--optm.lr=...`` and fail in
    every run: refused at start, naming the key it is close to. A dotted name not close to
    any key stays a flag."""
    sim = tmp_path / "proj"
    sim.mkdir()
    (sim / "train.py").write_text(TRAINER)
    (sim / "model.yaml").write_text("optim:\n  lr: 0.1\n  momentum: 0.9\nepochs: 1\n")
    (sim / "search.yaml").write_text(textwrap.dedent("""\
        script: train.py
        metrics: [loss]
        config_template: model.yaml
        config_arg: model_config
        parameters:
          optm.lr: [0.1, 0.01]
          data.seed: [1]
    """))
    out = tmp_path / "out"
    rc, stdout, err = run_hpsearch(["--search_file=proj/search.yaml", "--run_cwd=proj",
                                    f"--out_dir={out}", "--visible_gpus=-1"], tmp_path)
    assert rc == 2, err
    assert err.startswith("hpsearch: error: ") and "parameter 'optm.lr': no key 'optm' in " \
        "config template " in err, err
    assert "model.yaml (did you mean 'optim.lr'?)" in err and err.count("\n") == 1, err
    assert "Traceback" not in err and not out.exists()
    cf = load_config_file(sim / "model.yaml", "model_config", False,
                          {"optim.lr": [0.1], "data.seed": [1]})
    assert cf.paths == {"optim.lr": ("optim", "lr")}  # data.seed: a flag, as before
    with pytest.raises(UsageError, match=r"no key 'optimm'.*did you mean 'optim.momentum'"):
        load_config_file(sim / "model.yaml", "model_config", True, {"optimm.momentm": [1]})
