"""``algorithm: external`` outside the service: the search-file settings, the placeholders,
the output check, and a normal local search whose points come from a generator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import run_hpsearch, wait_for, write_search

from hpsearch.errors import UsageError
from hpsearch.spec.gridmodule import resolve_algorithm
from hpsearch.spec.searchfile import spec_from_mapping, split_generator
from hpsearch.strategies.external import check_points, substitute

BASE = {"script": "sim.py", "metrics": ["acc"], "num_trials": 4,
        "parameters": {"x": {"method": "uniform", "low": 0, "high": 1}}}


def spec(**settings):
    return spec_from_mapping({**BASE, **settings}, "search file s.yaml", Path("."),
                             check_script=False)


def test_the_settings_and_their_one_line_errors():
    s = spec(generator="python gen.py --in=%IN %OUT")
    assert s.algorithm == "external" and s.generator == ("python", "gen.py", "--in=%IN", "%OUT")
    assert s.generator_timeout == 600
    assert spec(generator=["gen", "%OUT"], generator_timeout=5).generator_timeout == 5
    for settings, words in [
        ({"generator": "gen %IN"}, "has no %OUT"),
        ({"generator": "gen 'x %OUT"}, "cannot be split"),
        ({"generator": 3}, "must be a command line"),
        ({"generator": "gen %OUT", "generator_timeout": 0}, "generator_timeout must be"),
        ({"generator": "gen %OUT", "algorithm": "tpe"}, "generator is for algorithm external"),
    ]:
        with pytest.raises(UsageError) as err:
            resolve_algorithm(spec(**settings), None, None, None)
        assert words is None or words in str(err.value)
    with pytest.raises(UsageError, match="needs a generator"):
        resolve_algorithm(spec(), "external", None, None)


def test_placeholders_are_replaced_as_whole_words_only():
    argv = substitute(["gen", "--in=%IN", "%OUT", "%INPUT", "%NUM_POINTS", "%MAX_POINTSX"],
                      {"IN": "/a/in.json", "OUT": "/a/out.json", "NUM_POINTS": "3",
                       "MAX_POINTS": "9"})
    assert argv == ["gen", "--in=/a/in.json", "/a/out.json", "%INPUT", "3", "%MAX_POINTSX"]
    assert split_generator("gen %OUT", "g") == ("gen", "%OUT")


def test_the_output_must_be_points_of_the_space():
    s = spec(generator="gen %OUT")
    assert check_points([{"x": 0.5}], s) == [{"x": 0.5}]
    for data, words in [({"x": 1}, "not a list"), ([1], "not an object"),
                        ([{"y": 1}], "lacks x; has unknown y"),
                        ([{"x": [1]}], "not a text, finite number or boolean"),
                        ([{"x": float("nan")}], "finite"), ([{"x": "a\0b"}], "NUL")]:
        with pytest.raises(ValueError) as err:
            check_points(data, s)
        assert words in str(err.value)


def test_a_normal_search_runs_the_points_of_an_external_generator(tmp_path):
    search = write_search(tmp_path, {"x": [0]})
    gen = search.sim_dir / "gen.py"
    gen.write_text("import json, sys\n"
                   "data = json.load(open(sys.argv[1]))\n"
                   "n = min(int(sys.argv[3]), 5 - len(data['points']))\n"
                   "json.dump([{'x': len(data['points']) + i} for i in range(n)], "
                   "open(sys.argv[2], 'w'))\n")
    (search.sim_dir / "s.yaml").write_text(
        f"script: sim.py\nsummary_file: perf.txt\nmetrics: [acc]\ndirection: maximize\n"
        f"generator: {sys.executable} gen.py %IN %OUT %NUM_POINTS\nnum_trials: 10\n"
        "parameters:\n  x: {method: uniform, low: 0, high: 10}\n")
    rc, out, err = run_hpsearch(["--search_file=proj/s.yaml", "--run_cwd=proj",
                                 f"--out_dir={search.out_dir}", "--visible_gpus=-1",
                                 "--num_jobs=2"], tmp_path)
    assert rc == 0, err
    rows = search.results()
    assert sorted(float(r["x"]) for r in rows) == [0, 1, 2, 3, 4]  # [] ended it at 5
    log = [json.loads(ln) for ln in (search.out_dir / "generator.log").read_text().split("\n")
           if ln]
    assert log[-1]["status"] == "empty"
    rc, out, err = run_hpsearch(["--search_file=proj/s.yaml", "--run_cwd=proj",
                                 f"--out_dir={tmp_path / 'dry'}", "--dry_run"], tmp_path)
    assert rc == 0 and out == "" and "come from the generator" in err
    assert not (tmp_path / "dry").exists()


def test_the_generator_sees_every_point_with_its_loss_and_the_space(tmp_path):
    from hpsearch.strategies.base import Outcome, Proposal
    from hpsearch.strategies.external import ExternalGenerator

    gen = tmp_path / "gen.py"
    gen.write_text("import json, shutil, sys\n"
                   "shutil.copy(sys.argv[1], sys.argv[1] + '.seen')\n"
                   "json.dump([{'x': 0.5}] * int(sys.argv[3]), open(sys.argv[2], 'w'))\n")
    s = spec(generator=f"{sys.executable} {gen} %IN %OUT %NUM_POINTS")
    strategy = ExternalGenerator(s, 5, 2, tmp_path, tmp_path)
    strategy.restore([Proposal(0, {"x": 0.1}), Proposal(1, {"x": 0.2})],
                     [Outcome(0, "finished", [0.7]), Outcome(1, "failed")])
    assert strategy.ask(2) == [] and strategy.busy
    wait_for(lambda: not strategy.busy, 20, "the generator call")
    got = strategy.ask(5)
    assert [(p.trial, p.config) for p in got] == [(2, {"x": 0.5}), (3, {"x": 0.5})]
    seen = json.loads((tmp_path / "generator" / "idds_input.json.seen").read_text())
    assert seen == {"points": [[{"x": 0.1}, 0.7], [{"x": 0.2}, None]],
                    "opt_space": {"x": {"method": "uniform", "low": 0, "high": 1}}}
    assert strategy.status()["calls"] == 2 and not strategy.done  # 1 point left: asked again
    strategy.close()
