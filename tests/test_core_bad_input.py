"""Bad input: one line on stderr, exit status 2, no traceback, nothing written."""

from __future__ import annotations

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
}


class Unloadable:
    """Pickled here, not importable where hpsearch unpickles it."""


def bad_args(s, case):
    if case == "missing_module":
        return s.args("--num_jobs=2") + ["--grid_module=nosuchmodule"]
    if case == "broken_pickle":
        import pickle

        path = s.root / "grid.pkl"
        data = pickle.dumps({"grid": {"x": [Unloadable()]}})
        path.write_bytes(data.replace(b"test_core_bad_input", b"nosuch_module_xyz"))
        return s.args(f"--grid_config={path}")
    if case in MODULES:
        (s.sim_dir / f"bad_{case}.py").write_text(MODULES[case])
        return s.args() + [f"--grid_module=bad_{case}"]
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
    rc, out, err = run_hpsearch(bad_args(s, case), tmp_path)
    assert_one_line_error(rc, err, case)
    assert not s.out_dir.exists()
    assert not s.log.exists()


def snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


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
