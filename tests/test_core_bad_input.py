"""Bad input: one line on stderr, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import json
import os

import pytest
from conftest import GRID_MODULE, run_hpsearch, write_search

GOOD = dict(grid={"x": [1, 2]}, conditions=[], keywords=["acc", "loss", "finished"],
            perf_key="acc", ascending=False)


def module(**changes):
    return GRID_MODULE.format(**{**GOOD, **changes})


MODULES = {
    "raises_on_import": "raise RuntimeError('broken config')\n" + module(),
    "no_grid": module().replace("grid = {'x': [1, 2]}", ""),
    "value_not_a_list": module(grid={"x": 1}),
    "empty_list": module(grid={"x": []}),
    "missing_script": module().replace('"sim.py"', '"missing.py"'),
    "perf_key_not_keyword": module(perf_key="nope"),
    "keywords_without_finished": module(keywords=["acc", "loss"]),
    "nul_byte": module(grid={"x": ["a\0b"]}),
    "lone_surrogate": module(grid={"x": ["\udcff"]}),
    "too_long": module(grid={"x": ["y" * 200000]}),
    "reserved_name": module(grid={"status": [1, 2]}),
    "keyword_name": module(grid={"loss": [1, 2]}),
    "sort_asc_text": module().replace("_PERFORMANCE_SORT_ASC = False",
                                      "_PERFORMANCE_SORT_ASC = 'False'"),
    "sys_exit_on_import": "import sys\nsys.exit(0)\n" + module(),
    "parse_args_on_import": "import argparse\nargparse.ArgumentParser().parse_args(['--x'])\n"
                            + module(),
    "base_exception": "raise GeneratorExit('odd')\n" + module(),
    "os_exit_on_import": "import os\nos._exit(0)\n" + module(),
    "metric_named_status": module(keywords=["acc", "status", "finished"]),
    "metric_with_slash": module(keywords=["acc", "val/loss", "finished"]),
    "metric_with_escape": module(keywords=["acc", "lo\x1bss", "finished"]),
    "parameter_with_equals": module(grid={"out_dir=/x y": [1]}),
    "parameter_with_slash": module(grid={"a/b": [1]}),
    "summary_file_absolute": module().replace('"perf.txt"', '"/tmp/perf.txt"'),
    "summary_file_escaping": module().replace('"perf.txt"', '"../perf.txt"'),
}

SEARCH_HEAD = "script: sim.py\nsummary_file: perf.txt\nmetrics: [acc, loss]\n"
#: search files (name -> text), each with one thing that cannot be honoured
SEARCH_FILES = {
    "sf_metric_named_status.yaml": "script: sim.py\nmetrics: [acc, status]\n"
                                   "parameters: {x: [1]}\n",
    "sf_metric_with_slash.yaml": "script: sim.py\nmetrics: [acc, val/loss]\n"
                                 "parameters: {x: [1]}\n",
    "sf_metric_with_escape.json": json.dumps({"script": "sim.py", "metrics": ["a\x1bcc"],
                                              "parameters": {"x": [1]}}),
    "sf_parameter_with_equals.yaml": SEARCH_HEAD + "parameters: {'out_dir=/x y': [1]}\n",
    "sf_parameter_with_slash.yaml": SEARCH_HEAD + "parameters: {a/b: [1]}\n",
    "sf_summary_file_absolute.yaml": "script: sim.py\nsummary_file: /tmp/x.txt\n"
                                     "metrics: [acc]\nparameters: {x: [1]}\n",
    "sf_summary_file_escaping.yaml": "script: sim.py\nsummary_file: ../x.txt\n"
                                     "metrics: [acc]\nparameters: {x: [1]}\n",
    "sf_uniform_overflows.yaml": SEARCH_HEAD + "algorithm: random\nnum_trials: 2\n"
                                 "parameters: {x: {method: uniform, low: -1.0e308, "
                                 "high: 1.0e308}}\n",
    "sf_lognormal_overflows.yaml": SEARCH_HEAD + "algorithm: random\nnum_trials: 2\n"
                                   "parameters: {x: {method: lognormal, mu: 1000, sigma: 1}}\n",
    "sf_deep_yaml.yaml": SEARCH_HEAD + "parameters: {x: [" + "[" * 100000 + "]" * 100000
                         + "]}\n",
    "sf_deep_json.json": '{"script": "sim.py", "metrics": ["acc"], "parameters": {"x": ['
                         + "[" * 100000 + "]" * 100000 + "]}}",
    "sf_duplicate_key_yaml.yaml": SEARCH_HEAD + "parameters:\n  x: [1, 2]\n  x: [3]\n",
    "sf_duplicate_key_json.json": '{"script": "sim.py", "metrics": ["acc"], '
                                  '"parameters": {"x": [1, 2], "x": [3]}}',
}

FLAGS = {
    "num_jobs_0": ["--num_jobs=0"],
    "allowed_load_2": ["--allowed_load=2"],
    "retries_negative": ["--retries=-1"],
    "num_searches_0": ["--num_searches=0"],
    "unknown_flag": ["--no_such_flag=1"],
    "random_picks_without_count": ["--dont_generate_full_grid"],
    "num_hours_inf": ["--num_hours=inf"],
    "timeout_nan": ["--timeout=nan"],
    "allowed_memory_nan": ["--allowed_memory=nan"],
    "both_sources": ["--search_file=x.yaml"],
    "missing_template": ["--job_template=nosuch.j2"],
    "gpu_memory_not_a_size": ["--gpu_memory_per_run=abc"],  # with --visible_gpus=-1
}

EXPECTED_WORDS = {
    "missing_module": "nosuchmodule", "raises_on_import": "broken config",
    "no_grid": "defines no 'grid'", "value_not_a_list": "list", "empty_list": "empty",
    "missing_script": "missing.py", "perf_key_not_keyword": "nope",
    "keywords_without_finished": "finished", "num_jobs_0": "num_jobs",
    "allowed_load_2": "allowed_load", "retries_negative": "retries",
    "num_searches_0": "num_searches", "unknown_flag": "no_such_flag",
    "random_picks_without_count": "num_searches",
    "nul_byte": "NUL", "lone_surrogate": "surrogate", "too_long": "bytes long",
    "reserved_name": "results column", "keyword_name": "summary keyword",
    "sort_asc_text": "True or False", "sys_exit_on_import": "sys.exit(0)",
    "parse_args_on_import": "sys.exit(2)", "base_exception": "GeneratorExit",
    "num_hours_inf": "finite", "timeout_nan": "finite", "allowed_memory_nan": "finite",
    "both_sources": "either --grid_module", "missing_template": "nosuch.j2",
    "broken_pickle": "grid_config",
    "os_exit_on_import": "os._exit(0)", "grid_config_os_exit": "os._exit(0) while it was "
    "unpickled", "metric_named_status": "results column",
    "metric_with_slash": "'val/loss' must be one word", "metric_with_escape": "metric",
    "parameter_with_equals": "not a flag name", "parameter_with_slash": "not a flag name",
    "summary_file_absolute": "inside the run's out dir",
    "summary_file_escaping": "inside the run's out dir",
    "sf_metric_named_status.yaml": "results column",
    "sf_metric_with_slash.yaml": "'val/loss' must be one word",
    "sf_metric_with_escape.json": "must be one word of printable characters",
    "sf_parameter_with_equals.yaml": "not a flag name",
    "sf_parameter_with_slash.yaml": "not a flag name",
    "sf_summary_file_absolute.yaml": "inside the run's out dir",
    "sf_summary_file_escaping.yaml": "inside the run's out dir",
    "sf_uniform_overflows.yaml": "wider than a float can hold",
    "sf_lognormal_overflows.yaml": "0 or infinite",
    "sf_deep_yaml.yaml": "more than 100 levels deep", "sf_deep_json.json": "levels deep",
    "sf_duplicate_key_yaml.yaml": "'x' appears twice",
    "sf_duplicate_key_json.json": "'x' twice",
    "gpu_memory_not_a_size": "--gpu_memory_per_run='abc' is not a size",
    "cancel_not_a_search": "not an hpsearch search directory",
}


class Unloadable:
    """Pickled here, not importable where hpsearch unpickles it."""


class ExitsWhenUnpickled:
    """Unpickled, it calls ``os._exit(0)``."""

    def __reduce__(self):
        return os._exit, (0,)


def bad_args(s, case):
    if case == "missing_module":
        return s.args("--num_jobs=2") + ["--grid_module=nosuchmodule"]
    if case == "broken_pickle":
        import pickle

        path = s.root / "grid.pkl"
        data = pickle.dumps({"grid": {"x": [Unloadable()]}})
        path.write_bytes(data.replace(b"test_core_bad_input", b"nosuch_module_xyz"))
        return s.args(f"--grid_config={path}")
    if case == "grid_config_os_exit":
        import pickle

        path = s.root / "grid.pkl"
        path.write_bytes(pickle.dumps({"grid": {"x": [1]}, "y": ExitsWhenUnpickled()}))
        return s.args(f"--grid_config={path}")
    if case in MODULES:
        (s.sim_dir / f"bad_{case}.py").write_text(MODULES[case])
        return s.args() + [f"--grid_module=bad_{case}"]
    if case in SEARCH_FILES:
        (s.root / case).write_text(SEARCH_FILES[case])
        return [f"--search_file={case}", *s.args()[1:]]
    if case == "cancel_not_a_search":
        (s.root / "not-a-search").mkdir()
        return ["cancel", str(s.root / "not-a-search")]
    return s.args(*FLAGS[case])


def assert_one_line_error(rc, err, case):
    assert rc == 2, err
    assert err.startswith("hpsearch: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert EXPECTED_WORDS[case] in err, err


@pytest.mark.parametrize("case", sorted(EXPECTED_WORDS))
def test_bad_input_writes_nothing(tmp_path, case):
    s = write_search(tmp_path, GOOD["grid"])
    args = bad_args(s, case)
    before = snapshot(s.root)
    rc, out, err = run_hpsearch(args, tmp_path)
    assert_one_line_error(rc, err, case)
    assert not s.out_dir.exists()
    assert not s.log.exists()
    assert snapshot(s.root) == before


def snapshot(folder):
    """Every file and symlink under ``folder``: its bytes (a link: its target), its mtime."""
    found = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            found[p] = (os.readlink(p), p.lstat().st_mtime_ns)
        elif p.is_file():
            found[p] = (p.read_bytes(), p.stat().st_mtime_ns)
    return found


def test_bad_input_leaves_existing_search_untouched(tmp_path):
    s = write_search(tmp_path, GOOD["grid"])
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    before = snapshot(s.out_dir)
    assert any(p.name == "search_results.csv" for p in before)
    for case in ("num_jobs_0", "value_not_a_list", "missing_module", "missing_script"):
        rc, _, err = run_hpsearch(bad_args(s, case), tmp_path)
        assert_one_line_error(rc, err, case)
    assert snapshot(s.out_dir) == before


def garbage_lock(out_dir):
    (out_dir / ".hpsearch.lock").write_bytes(b"\xff\xfe\x00 not a driver record \x80")


def journal_symlink_loop(out_dir):
    journal = out_dir / "journal.jsonl"
    journal.unlink()
    journal.symlink_to(journal.name)


@pytest.mark.parametrize(("damage", "expected"), [
    (garbage_lock, "holds no readable driver record"),
    (journal_symlink_loop, "cannot read the journal"),
])
def test_a_damaged_search_dir_is_one_line_and_stays_as_it_is(tmp_path, damage, expected):
    """A lock of non-UTF-8 bytes, a journal that is a symlink loop: the search, its status
    and collect each say so in one line (exit 2) and leave the directory as it was."""
    s = write_search(tmp_path, GOOD["grid"])
    rc, _, err = run_hpsearch(s.args(), tmp_path)
    assert rc == 0, err
    damage(s.out_dir)
    before = snapshot(s.out_dir)
    commands = [s.args()]
    if damage is journal_symlink_loop:
        commands += [["status", str(s.out_dir)], ["collect", str(s.out_dir)]]
    for args in commands:
        rc, _, err = run_hpsearch(args, tmp_path)
        assert rc == 2, err
        assert err.startswith("hpsearch: error: ") and expected in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert snapshot(s.out_dir) == before
