"""Hyperband and BOHB by budget, PBT by segments: the strategies alone, then real searches.

The sims are the repository's: ``sims/multifidelity/train.py`` (quality rises with the
budget, deterministic per configuration; it continues from the checkpoint in
``$HPSEARCH_RESUME_FROM`` and says so in ``resumed_from``) and ``sims/schedule/train.py``
(SGD on a noisy quadratic: a falling learning-rate schedule beats every constant rate).
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hpsearch, start_hpsearch, wait_for
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture: the local Slurm cluster)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

from hpsearch.spec.searchfile import spec_from_mapping
from hpsearch.strategies.base import Outcome
from hpsearch.strategies.hyperband import HyperbandStrategy
from hpsearch.strategies.pbt import PbtStrategy

REPO = Path(__file__).resolve().parent.parent
SPACE = {"lr": {"method": "loguniform", "low": 1.0e-4, "high": 1.0},
         "width": {"method": "qloguniform", "low": 16, "high": 1024, "q": 16},
         "dropout": {"method": "uniform", "low": 0.0, "high": 0.6}}


def budget_file(root: Path, algorithm: str, num_trials: int, budget: dict[str, Any],
                **extra: Any) -> Path:
    """The multi-fidelity sim under ``root/mf`` and its search file."""
    shutil.copytree(REPO / "sims" / "multifidelity", root / "mf", dirs_exist_ok=True)
    data = {"script": "train.py", "metrics": ["val_loss", "trained", "resumed_from"],
            "objective": "val_loss", "algorithm": algorithm, "num_trials": num_trials,
            "seed": 5, "budget": budget, "parameters": {**SPACE, **extra}}
    path = root / "mf" / f"{algorithm}.json"
    path.write_text(json.dumps(data))
    return path


def rows_of(out: Path) -> list[dict[str, str]]:
    with open(out / "search_results.csv", newline="") as f:
        return sorted(csv.DictReader(f, delimiter=";"), key=lambda r: int(r["trial"]))


def proposals(out: Path) -> list[tuple[Any, ...]]:
    """Every journaled proposal: trial, configuration, lineage."""
    events = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()
              if line.endswith("}")]
    found = [(e["trial"], e["config"], e.get("lineage")) for e in events if e["ev"] == "trial"]
    found += [(e["trial"], e["config"], e.get("lineage")) for e in events if e["ev"] == "run"]
    return sorted(found, key=lambda p: p[0])


def spec_of(data: dict[str, Any], tmp_path: Path):
    (tmp_path / "train.py").write_text("")
    base = {"script": "train.py", "metrics": ["loss"], "parameters": SPACE}
    return spec_from_mapping({**base, **data}, "search file s.yaml", tmp_path)


# -- the strategies alone ---------------------------------------------------------------
def test_hyperband_brackets_are_li_et_als(tmp_path):
    """One run at a time, each told before the next ask: the brackets of Li et al. (2018)
    for min 1, max 27, eta 3, promotions continuing the run one rung below."""
    spec = spec_of({"algorithm": "hyperband", "budget": {"parameter": "epochs", "min": 1,
                                                         "max": 27, "eta": 3}}, tmp_path)
    strategy = HyperbandStrategy(spec, seed=1, num_trials=49)
    seen = []
    while not strategy.done:
        (p,) = strategy.ask(1)
        seen.append(p)
        strategy.tell(Outcome(p.trial, "finished", [1.0 / (1 + p.trial % 7)]))
    counts: dict[tuple[int, int], list[int]] = {}
    for p in seen:
        counts.setdefault((p.lineage["bracket"], p.lineage["rung"]), []).append(
            p.config["epochs"])
    assert {k: (len(v), set(v)) for k, v in counts.items()} == {
        (0, 0): (27, {1}), (0, 1): (9, {3}), (0, 2): (3, {9}), (0, 3): (1, {27}),
        (1, 0): (12, {3}), (1, 1): (4, {9}), (1, 2): (1, {27}),
        (2, 0): (6, {9}), (2, 1): (2, {27}), (3, 0): (4, {27})}
    by_trial = {p.trial: p for p in seen}
    for p in seen:
        if p.lineage["rung"] > 0:
            parent = by_trial[p.lineage["continues"]]
            assert parent.lineage["rung"] == p.lineage["rung"] - 1
            assert {k: v for k, v in parent.config.items() if k != "epochs"} == {
                k: v for k, v in p.config.items() if k != "epochs"}
    assert strategy.total == len(seen) == 69


def test_hyperband_promotes_without_waiting_for_the_rung(tmp_path):
    """Asynchronous: with 3 of 9 first-rung runs ended, the best of them goes up at once
    (ASHA's rule: the top third of those that ended), while 6 still run."""
    spec = spec_of({"algorithm": "hyperband", "budget": {"parameter": "epochs", "min": 1,
                                                         "max": 9, "eta": 3}}, tmp_path)
    strategy = HyperbandStrategy(spec, seed=1, num_trials=9)
    first = strategy.ask(9)
    assert [p.config["epochs"] for p in first] == [1] * 9
    assert strategy.ask(1) == []  # nothing ended: nothing to promote, no configuration left
    for p, value in zip(first[:3], [0.5, 0.2, 0.9], strict=True):
        strategy.tell(Outcome(p.trial, "finished", [value]))
    (promoted,) = strategy.ask(2)
    assert promoted.config["epochs"] == 3 and promoted.lineage["continues"] == first[1].trial
    assert not strategy.done


def test_hyperband_promotes_li_et_als_best_as_soon_as_certain(tmp_path):
    """While new configurations are left, a rung promotes exactly its best
    ``capacity(rung + 1)`` (Li et al.'s synchronous choice), each once no run still to end
    can push it out -- not the best of whichever ended first, which fills the rung above
    with worse ones (ASHA's rule would promote ``first[1]``, value 0.2, after 3 results)."""
    spec = spec_of({"algorithm": "hyperband", "budget": {"parameter": "epochs", "min": 1,
                                                         "max": 9, "eta": 3}}, tmp_path)
    strategy = HyperbandStrategy(spec, seed=1, num_trials=40)
    first = strategy.ask(9)
    values = [0.5, 0.2, 0.9, 0.1, 0.15, 0.3, 0.05, 0.8, 0.7]
    for p, value in zip(first[:3], values[:3], strict=True):
        strategy.tell(Outcome(p.trial, "finished", [value]))
    (fresh,) = strategy.ask(1)  # 6 still run: a new configuration, not a promotion
    assert fresh.lineage == {"bracket": 1, "rung": 0} and fresh.config["epochs"] == 3
    for p, value in zip(first[3:7], values[3:7], strict=True):
        strategy.tell(Outcome(p.trial, "finished", [value]))
    # 7 ended, 2 running: 0.05 (rank 0) is certain to stay among the best 3, 0.1 is not
    (promoted, other) = strategy.ask(2)
    assert promoted.lineage["continues"] == first[6].trial
    assert "continues" not in other.lineage
    for p, value in zip(first[7:], values[7:], strict=True):
        strategy.tell(Outcome(p.trial, "finished", [value]))
    more = strategy.ask(3)
    assert [p.lineage.get("continues") for p in more] == [first[3].trial, first[4].trial,
                                                         None]


def test_failed_runs_shrink_the_room_above_so_promotions_go_on(tmp_path):
    """7 of 9 first-rung runs fail: the 2 others go up; once both ended at 3 epochs, the
    better goes up to 9 at once (the rung at 3 can never hold more than 2), not only after
    the last configuration is drawn."""
    spec = spec_of({"algorithm": "hyperband", "budget": {"parameter": "epochs", "min": 1,
                                                         "max": 9, "eta": 3}}, tmp_path)
    strategy = HyperbandStrategy(spec, seed=1, num_trials=40)
    first = strategy.ask(9)
    for p in first[:7]:
        strategy.tell(Outcome(p.trial, "failed"))
    for p, value in zip(first[7:], [0.4, 0.3], strict=True):
        strategy.tell(Outcome(p.trial, "finished", [value]))
    up = strategy.ask(2)
    assert [p.lineage.get("continues") for p in up] == [first[8].trial, first[7].trial]
    for p, value in zip(up, [0.2, 0.25], strict=True):
        strategy.tell(Outcome(p.trial, "finished", [value]))
    (top,) = strategy.ask(1)
    assert top.config["epochs"] == 9 and top.lineage["continues"] == up[0].trial


def test_hyperband_restore_rebuilds_brackets_and_promotions(tmp_path):
    """A strategy rebuilt from the proposals and outcomes proposes what the first one does."""
    spec = spec_of({"algorithm": "hyperband", "budget": {"parameter": "epochs", "min": 1,
                                                         "max": 27, "eta": 3}}, tmp_path)
    one = HyperbandStrategy(spec, seed=2, num_trials=30)
    made, told = [], []
    for _ in range(25):
        batch = one.ask(2)
        made += batch
        for p in batch[:1]:
            outcome = Outcome(p.trial, "finished", [((p.trial * 37) % 11) / 10])
            one.tell(outcome)
            told.append(outcome)
    two = HyperbandStrategy(spec, seed=2, num_trials=30)
    two.restore(made, told)
    assert [(p.trial, p.config, p.lineage) for p in one.ask(5)] == [
        (p.trial, p.config, p.lineage) for p in two.ask(5)]


def sim_loss() -> Any:
    """The multi-fidelity sim's ``val_loss(lr, width, dropout, epoch)``."""
    import importlib.util

    found = importlib.util.spec_from_file_location(
        "mf_train", REPO / "sims" / "multifidelity" / "train.py")
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module.val_loss


def test_bohb_draws_better_configurations_than_hyperband(tmp_path):
    """The same budgets and promotions, one run at a time on the sim's curves: after 40
    proposals, BOHB's new configurations end better (median final loss) than Hyperband's
    random ones."""
    from hpsearch.strategies.optuna.bohb import BohbStrategy

    val_loss = sim_loss()
    medians = {}
    for name, cls in (("hyperband", HyperbandStrategy), ("bohb", BohbStrategy)):
        spec = spec_of({"algorithm": name, "budget": {"parameter": "epochs", "min": 1,
                                                      "max": 27, "eta": 3}}, tmp_path)
        strategy = cls(spec, seed=4, num_trials=200)
        finals = []
        for _ in range(150):
            (p,) = strategy.ask(1)
            c = p.config
            if p.lineage["rung"] == 0 and p.trial >= 40:
                finals.append(val_loss(c["lr"], c["width"], c["dropout"], 27))
            strategy.tell(Outcome(p.trial, "finished", [
                val_loss(c["lr"], c["width"], c["dropout"], c["epochs"])]))
        medians[name] = sorted(finals)[len(finals) // 2]
    assert medians["bohb"] < 0.75 * medians["hyperband"], medians


def test_bohb_fits_its_model_on_the_largest_budget_with_enough_results(tmp_path):
    """Falkner et al.'s model: the results of one budget alone, the largest that has
    ``N_min + 2`` of them, ``N_min = d + 1`` (here d = 3: 6; hpbandster's 8 is not the
    paper's), with their own values, in the order proposed; the good density takes
    ``max(d + 1, 15%)`` of them."""
    from hpsearch.strategies.optuna.bohb import BohbStrategy, good_count, model_budget

    assert model_budget({1.0: 30, 3.0: 6, 9.0: 5}, 3) == 3.0
    assert model_budget({1.0: 5}, 3) is None
    assert [good_count(n, 3) for n in (8, 26, 27, 100)] == [4, 4, 4, 15]
    val_loss = sim_loss()
    spec = spec_of({"algorithm": "bohb", "budget": {"parameter": "epochs", "min": 1,
                                                    "max": 9, "eta": 3}}, tmp_path)
    strategy = BohbStrategy(spec, seed=3, num_trials=100)
    seen, results = [], {}
    while True:
        (p,) = strategy.ask(1)
        seen.append(p)
        c = p.config
        results[p.trial] = val_loss(c["lr"], c["width"], c["dropout"], c["epochs"])
        strategy.tell(Outcome(p.trial, "finished", [results[p.trial]]))
        if sum(q.config["epochs"] == 3 for q in seen) == 9:
            break
    assert sum(q.config["epochs"] == 9 for q in seen) < 6  # budget 9: too few results
    at3 = [q for q in seen if q.config["epochs"] == 3]
    model = strategy._results_to_model()
    assert [value for _, value in model] == [results[q.trial] for q in at3]
    assert [params for params, _ in model] == [
        strategy._raw[q.internal["config"]]["params"] for q in at3]


def test_pbt_exploits_the_top_and_continues_its_checkpoint(tmp_path):
    spec = spec_of({"algorithm": "pbt", "parameters": {"lr": SPACE["lr"]},
                    "pbt": {"population": 4, "interval": 5, "parameter": "total_steps",
                            "segments": 2, "quantile": 0.25}}, tmp_path)
    strategy = PbtStrategy(spec, seed=1)
    first = strategy.ask(10)
    assert [p.trial for p in first] == [0, 1, 2, 3]
    assert all(p.config["total_steps"] == 5 and "continues" not in p.lineage for p in first)
    for p, value in zip(first[:3], [0.3, 0.1, 0.5], strict=True):
        strategy.tell(Outcome(p.trial, "finished", [value]))
    assert strategy.ask(4) == []  # the segment waits for its last run
    strategy.tell(Outcome(3, "failed"))
    second = strategy.ask(4)
    assert [p.lineage["member"] for p in second] == [0, 1, 2, 3]
    assert all(p.config["total_steps"] == 10 and p.lineage["segment"] == 1 for p in second)
    # the top quarter (member 1) keeps its own; the worst (failed member 3) takes member 1's
    assert [p.lineage["continues"] for p in second] == [0, 1, 2, 1]
    assert second[1].config["lr"] == first[1].config["lr"]
    assert second[3].config["lr"] != first[1].config["lr"]  # explored
    assert strategy.done


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "words"), [
    ({"algorithm": "hyperband", "num_trials": 5}, "needs a budget"),
    ({"algorithm": "random", "num_trials": 5,
      "budget": {"parameter": "epochs", "min": 1, "max": 9, "eta": 3}}, "budget is for"),
    ({"algorithm": "bohb", "num_trials": 5,
      "budget": {"parameter": "lr", "min": 1, "max": 9, "eta": 3}}, "set by the algorithm"),
    ({"algorithm": "bohb", "num_trials": 5,
      "budget": {"parameter": "epochs", "min": 1, "max": 9, "eta": 1}}, "eta must be"),
    ({"algorithm": "hyperband", "num_trials": 5,
      "budget": {"parameter": "epochs", "min": 1, "max": 9}}, "sets no eta"),
    ({"algorithm": "pbt", "pbt": {"population": 4, "interval": 5, "segments": 2,
                                  "parameter": "total_steps", "perturb": []}}, "perturb"),
    ({"algorithm": "pbt", "pbt": {"population": 4, "interval": 5, "segments": 2,
                                  "parameter": "total_steps"},
      "parameters": {"opt": ["a", "b"], "lr": SPACE["lr"]},
      "conditions": [[{"opt": ["a"]}, {"momentum": [0.1, 0.9]}]]}, "no conditions"),
    ({"algorithm": "pbt", "pbt": {"population": 4, "interval": 5, "segments": 2,
                                  "parameter": "steps"}}, "results column"),
    ({"algorithm": "hyperband", "num_trials": 5,
      "initial_points": [{"lr": 0.01, "width": 64, "dropout": 0.1}],
      "budget": {"parameter": "epochs", "min": 1, "max": 9, "eta": 3}},
     "initial_points is not used by algorithm hyperband"),
    ({"algorithm": "bohb", "num_trials": 5, "forbid": [{"lr": [0.01]}],
      "budget": {"parameter": "epochs", "min": 1, "max": 9, "eta": 3}},
     "forbid is not used by algorithm bohb"),
    ({"algorithm": "bohb", "num_trials": 5, "constraints": ["val_loss <= 1"],
      "budget": {"parameter": "epochs", "min": 1, "max": 9, "eta": 3}},
     "algorithm bohb cannot take constraints"),
])
def test_bad_settings_are_one_line(tmp_path, change, words):
    shutil.copytree(REPO / "sims" / "multifidelity", tmp_path / "mf")
    data = {"script": "train.py", "metrics": ["val_loss"], "parameters": SPACE, **change}
    (tmp_path / "mf" / "s.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    rc, stdout, err = run_hpsearch([f"--search_file={tmp_path / 'mf' / 's.json'}",
                                    f"--run_cwd={tmp_path / 'mf'}", f"--out_dir={out}",
                                    "--visible_gpus=-1"], tmp_path)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert "Traceback" not in err and not out.exists()


# -- real searches -----------------------------------------------------------------------
def check_budget_search(out: Path) -> list[dict[str, str]]:
    """The results of a budget search: every promotion continued its parent's checkpoint
    (the sim resumed from the parent's epochs and trained only the difference)."""
    rows = rows_of(out)
    by_trial = {r["trial"]: r for r in rows}
    assert all(r["status"] == "finished" for r in rows), rows
    promoted = [r for r in rows if r["continues"]]
    assert promoted
    for row in promoted:
        parent = by_trial[row["continues"]]
        assert int(row["rung"]) == int(parent["rung"]) + 1
        assert int(row["epochs"]) > int(parent["epochs"])
        assert row["resumed_from"] == parent["epochs"]
        assert int(row["trained"]) == int(row["epochs"]) - int(parent["epochs"])
        assert row["lr"] == parent["lr"] and row["width"] == parent["width"]
    assert all(r["resumed_from"] == "0" for r in rows if not r["continues"])
    return rows


@pytest.mark.parametrize("algorithm", ["hyperband", "bohb"])
def test_budget_search_continues_checkpoints(tmp_path, algorithm):
    path = budget_file(tmp_path, algorithm, 20, {"parameter": "epochs", "min": 1, "max": 9,
                                                 "eta": 3})
    out = tmp_path / "out"
    rc, _, err = run_hpsearch([f"--search_file={path}", f"--run_cwd={path.parent}",
                               f"--out_dir={out}", "--visible_gpus=-1", "--num_jobs=3"],
                              tmp_path, timeout=300)
    assert rc == 0, err
    rows = check_budget_search(out)
    assert {r["epochs"] for r in rows} == {"1", "3", "9"}
    assert {r["bracket"] for r in rows} == {"0", "1", "2", "3"}  # 9 + 5 + 3 + 3 of 9
    command = (out / "runs" / rows[[r["continues"] != "" for r in rows].index(True)][
        "run_id"] / "command.sh").read_text()
    assert "HPSEARCH_RESUME_FROM=" in command


GRID_MODULE = """
from hpsearch.space import loguniform

grid = {grid}
_SCRIPT_NAME = "train.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = [{keywords}, "finished"]
_PERFORMANCE_SORT_ASC = True
_ALGORITHM = {algorithm!r}
_NUM_TRIALS = 20
{settings}
"""


def grid_module(root: Path, sim: str, algorithm: str, settings: str,
                keywords: str = '"val_loss", "trained", "resumed_from"',
                grid: str = '{"lr": loguniform(1e-4, 1.0), "width": [64, 256]}') -> list[str]:
    """A grid module ``hpconf_mf`` beside a copy of ``sims/<sim>`` (under ``root/mf``), and
    the flags of a search through it."""
    shutil.copytree(REPO / "sims" / sim, root / "mf", dirs_exist_ok=True)
    (root / "mf" / "hpconf_mf.py").write_text(GRID_MODULE.format(
        keywords=keywords, algorithm=algorithm, settings=settings, grid=grid))
    return ["--grid_module=hpconf_mf", f"--run_cwd={root / 'mf'}", f"--out_dir={root / 'out'}",
            "--visible_gpus=-1", "--num_jobs=3"]


def test_a_grid_module_budget_runs_hyperband_as_a_search_file_does(tmp_path):
    args = grid_module(tmp_path, "multifidelity", "hyperband",
                       '_BUDGET = {"parameter": "epochs", "min": 1, "max": 9, "eta": 3}')
    rc, _, err = run_hpsearch(args, tmp_path, timeout=300)
    assert rc == 0, err
    rows = check_budget_search(tmp_path / "out")
    assert {r["epochs"] for r in rows} == {"1", "3", "9"}
    assert {r["bracket"] for r in rows} == {"0", "1", "2", "3"}


def test_a_grid_module_pbt_trains_members_in_segments(tmp_path):
    args = grid_module(tmp_path, "schedule", "pbt",
                       '_PBT = {"population": 4, "interval": 5, "parameter": "total_steps", '
                       '"segments": 2}', keywords='"loss", "trained"',
                       grid='{"lr": loguniform(1e-3, 0.5)}')
    args = [a for a in args if not a.startswith("--num_jobs")]
    rc, _, err = run_hpsearch(args, tmp_path, timeout=300)
    assert rc == 0, err
    rows = rows_of(tmp_path / "out")
    assert [(r["member"], r["segment"], r["total_steps"]) for r in rows] == [
        (str(m), str(g), str(5 * (g + 1))) for g in range(2) for m in range(4)]
    assert all(r["continues"] != "" for r in rows[4:])


@pytest.mark.parametrize(("settings", "words"), [
    ('_BUDGET = {"parameter": "epochs", "min": 1, "max": 9}', "_BUDGET sets no eta"),
    ('_BUDGET = [1, 9, 3]', "_BUDGET must be a mapping"),
    ('_BUDGET = {"parameter": "width", "min": 1, "max": 9, "eta": 3}',
     "_BUDGET: 'width' is set by the algorithm (its budget); remove it from grid"),
    ('_BUDGET = {"parameter": "epochs", "min": 1, "max": 9, "eta": 3, "rungs": 2}',
     "_BUDGET: unknown key 'rungs'"),
    ("", "needs a budget (budget: in a search file, _BUDGET in a grid module)"),
    ('_PBT = {"population": 1, "interval": 5, "parameter": "steps2", "segments": 2}',
     "_PBT: population must be"),
    ('_BUDGET = {"parameter": "epochs", "min": 1, "max": 9, "eta": 3}\n'
     '_PBT = {"population": 4, "interval": 5, "parameter": "steps2", "segments": 2}',
     "pbt settings are for algorithm pbt, not hyperband"),
])
def test_bad_grid_module_budget_or_pbt_is_one_line(tmp_path, settings, words):
    args = grid_module(tmp_path, "multifidelity", "hyperband", settings)
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def kill_and_resume(args: list[str], cwd: Path, out: Path, procs: list, moments: list[int]
                    ) -> None:
    """Start the search, ``kill -9`` its driver once ``moment`` runs ended, for each moment;
    then run it to its end."""
    for moment in moments:
        driver = start_hpsearch(args, cwd)
        procs.append(driver)
        wait_for(lambda m=moment: (out / "journal.jsonl").exists() and sum(
            '"ev":"end"' in line for line in (out / "journal.jsonl").read_text().splitlines()
        ) >= m, timeout=240, what=f"{moment} runs ended")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    rc, _, err = run_hpsearch(args, cwd, timeout=300)
    assert rc == 0, err


@pytest.mark.parametrize("algorithm", ["hyperband", "bohb"])
def test_kill_9_at_several_moments_replays_exactly(tmp_path, procs, algorithm):
    """One run at a time: a search killed three times proposes exactly the configurations,
    budgets and promotions (lineage) of one that never was."""
    path = budget_file(tmp_path, algorithm, 14, {"parameter": "epochs", "min": 1, "max": 9,
                                                 "eta": 3}, epoch_seconds=0.03)
    base = [f"--search_file={path}", f"--run_cwd={path.parent}", "--visible_gpus=-1",
            "--num_jobs=1"]
    rc, _, err = run_hpsearch([*base, f"--out_dir={tmp_path / 'whole'}"], tmp_path,
                              timeout=300)
    assert rc == 0, err
    killed = tmp_path / "killed"
    kill_and_resume([*base, f"--out_dir={killed}"], tmp_path, killed, procs, [2, 9, 14])
    whole = proposals(tmp_path / "whole")
    assert len(whole) == 19  # 9 + 3 + 1 in bracket 0, 5 + 1 in bracket 1
    assert proposals(killed) == whole
    check_budget_search(killed)


def schedule_search(root: Path, **settings: Any) -> Path:
    shutil.copytree(REPO / "sims" / "schedule", root / "schedule", dirs_exist_ok=True)
    data = {"script": "train.py", "metrics": ["loss", "trained"], "objective": "loss",
            "seed": 3, "parameters": {"lr": {"method": "loguniform", "low": 1.0e-3,
                                             "high": 0.5}}, **settings}
    path = root / "schedule" / f"{data['algorithm']}.json"
    path.write_text(json.dumps(data))
    return path


def best_constant_loss(steps: int) -> float:
    """The sim's loss after ``steps`` steps at the best constant rate of the space (a fine
    scan: every constant rate is at least this)."""
    best = 1.0
    for k in range(2001):
        lr = 1.0e-3 * (0.5 / 1.0e-3) ** (k / 2000)
        loss = 1.0
        for _ in range(steps):
            loss = (1 - lr) ** 2 * loss + lr ** 2
        best = min(best, loss)
    return best


def test_pbt_beats_random_search_and_every_constant_rate(tmp_path):
    """8 members x 6 segments of 10 steps; random search with the same 480 steps: 8 runs of
    60. PBT's best member beats both; each row says its member, segment and which run it
    continued, and every continued run went on from that run's checkpoint."""
    pbt = schedule_search(tmp_path, algorithm="pbt", pbt={
        "population": 8, "interval": 10, "parameter": "total_steps", "segments": 6})
    rc, _, err = run_hpsearch([f"--search_file={pbt}", f"--run_cwd={pbt.parent}",
                               f"--out_dir={tmp_path / 'pbt'}", "--visible_gpus=-1",
                               "--num_jobs=4"], tmp_path, timeout=300)
    assert rc == 0, err
    rows = rows_of(tmp_path / "pbt")
    assert len(rows) == 48 and all(r["status"] == "finished" for r in rows)
    assert sum(int(r["trained"]) for r in rows) == 480
    by_trial = {r["trial"]: r for r in rows}
    for row in rows:
        segment = int(row["segment"])
        assert int(row["trial"]) == segment * 8 + int(row["member"])
        assert row["total_steps"] == str(10 * (segment + 1))
        if segment:
            assert by_trial[row["continues"]]["segment"] == str(segment - 1)
    exploited = [r for r in rows if r["continues"] and by_trial[r["continues"]]["member"]
                 != r["member"]]
    assert exploited  # the bottom quarter took the top's checkpoints
    best_pbt = min(float(r["loss"]) for r in rows if r["segment"] == "5")

    random_file = schedule_search(tmp_path, algorithm="random", num_trials=8,
                                  parameters={"lr": {"method": "loguniform", "low": 1.0e-3,
                                                     "high": 0.5}, "total_steps": 60})
    rc, _, err = run_hpsearch([f"--search_file={random_file}",
                               f"--run_cwd={random_file.parent}",
                               f"--out_dir={tmp_path / 'random'}", "--visible_gpus=-1",
                               "--num_jobs=4"], tmp_path, timeout=300)
    assert rc == 0, err
    best_random = min(float(r["loss"]) for r in rows_of(tmp_path / "random"))
    assert best_pbt < best_constant_loss(60) - 1e-6 < best_random


def test_pbt_kill_9_mid_segment_replays_exactly(tmp_path, procs):
    """Killed twice in the middle of a segment (two runs at a time), resumed: the same
    proposals, lineage included, as a search that ran through."""
    path = schedule_search(tmp_path, algorithm="pbt", pbt={
        "population": 4, "interval": 10, "parameter": "total_steps", "segments": 4})
    base = [f"--search_file={path}", f"--run_cwd={path.parent}", "--visible_gpus=-1",
            "--num_jobs=2"]
    rc, _, err = run_hpsearch([*base, f"--out_dir={tmp_path / 'whole'}"], tmp_path,
                              timeout=300)
    assert rc == 0, err
    killed = tmp_path / "killed"
    kill_and_resume([*base, f"--out_dir={killed}"], tmp_path, killed, procs, [5, 10])
    assert proposals(killed) == proposals(tmp_path / "whole")
    assert len(proposals(killed)) == 16


# -- on the schedulers -------------------------------------------------------------------
SLURM = ("--run_cluster", "--scheduler=slurm", "--slurm_gres=", "--slurm_mem=50M")


@pytest.mark.usefixtures("slurm_cluster")
def test_bohb_on_real_slurm_continues_checkpoints(tmp_path):
    """The local Slurm cluster (scripts/slurm/start.sh): every promotion is a job of its
    own that finds its parent's checkpoint through HPSEARCH_RESUME_FROM."""
    path = budget_file(tmp_path, "bohb", 9, {"parameter": "epochs", "min": 1, "max": 9,
                                             "eta": 3})
    out = tmp_path / "out"
    rc, _, err = run_hpsearch([f"--search_file={path}", f"--run_cwd={path.parent}",
                               f"--out_dir={out}", *SLURM, "--num_jobs=4"], tmp_path,
                              timeout=400)
    assert rc == 0, err
    rows = check_budget_search(out)
    assert any(r["epochs"] == "9" for r in rows)  # promoted twice
    assert all("_" in r["job_id"] for r in rows)  # Slurm array tasks


def test_pbt_on_the_lsf_emulator_packed(tmp_path, lsf):  # noqa: F811
    """PBT segments as runs packed two to an LSF job (the emulator of tests/lsf_emulator:
    IBM LSF cannot be installed here; it runs the jobs and speaks LSF's documented
    formats): each continued run went on from its parent's checkpoint."""
    path = schedule_search(tmp_path, algorithm="pbt", pbt={
        "population": 4, "interval": 10, "parameter": "total_steps", "segments": 3})
    out = tmp_path / "out"
    rc, _, err = run_hpsearch([f"--search_file={path}", f"--run_cwd={path.parent}",
                               f"--out_dir={out}", "--run_cluster", "--scheduler=lsf",
                               "--runs_per_job=2", "--num_jobs=2"], tmp_path, timeout=400)
    assert rc == 0, err
    rows = rows_of(out)
    assert len(rows) == 12 and all(r["status"] == "finished" for r in rows)
    assert all(r["trained"] == "10" for r in rows)  # each segment went on from a checkpoint
    assert list((out / "packs").iterdir())  # packed: the runs went through workers


# -- hpogrid's schedulers ----------------------------------------------------------------
def hpogrid_project(tmp_path: Path, hpo: dict[str, Any]) -> Path:
    (tmp_path / "train.py").write_text("def my_objective(config, reporter):\n"
                                       "    reporter(loss=config['x'])\n")
    path = tmp_path / "project.json"
    path.write_text(json.dumps({
        "model_config": {"script": "train.py", "model": "my_objective"},
        "search_space": {"x": {"method": "uniform", "dimension": {"low": 0, "high": 1}}},
        "hpo_config": {"metric": "loss", "mode": "min", **hpo}}))
    return path


def test_hpogrid_bohbhyperband_and_pbt_run_as_ours(tmp_path):
    from hpsearch.spec.fidelity import Budget, Pbt
    from hpsearch.spec.migrate import load_search_file

    spec = load_search_file(hpogrid_project(tmp_path, {
        "algorithm": "bohb", "scheduler": "bohbhyperband", "num_trials": 20,
        "scheduler_param": {"max_t": 27}}), tmp_path)
    assert (spec.algorithm, spec.num_trials) == ("bohb", 20)
    assert spec.budget == Budget("training_iteration", 1, 27, 3)
    assert any("bohbhyperband runs as algorithm: bohb" in w for w in spec.warnings)
    spec = load_search_file(hpogrid_project(tmp_path, {
        "scheduler": "pbt", "num_trials": 6, "stop": {"training_iteration": 20},
        "scheduler_param": {"perturbation_interval": 5, "quantile_fraction": 0.5,
                            "hyperparam_mutations": {}}}), tmp_path)
    assert spec.algorithm == "pbt"
    assert spec.pbt == Pbt(6, 5, "training_iteration", 4, quantile=0.5)
    assert "hpo_config scheduler_param not used here: hyperparam_mutations" in spec.warnings
    assert not any("hpo_config.stop" in w for w in spec.warnings)  # it gave the segments


def test_hpogrid_pbt_without_a_stop_is_one_line(tmp_path):
    path = hpogrid_project(tmp_path, {"scheduler": "pbt"})
    rc, _, err = run_hpsearch([f"--search_file={path}", f"--run_cwd={tmp_path}",
                               f"--out_dir={tmp_path / 'out'}", "--visible_gpus=-1"], tmp_path)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "scheduler pbt needs whole numbers" in err and not (tmp_path / "out").exists()


def test_a_deleted_journal_rebuilds_the_brackets_from_the_run_directories(tmp_path):
    """The journal deleted after a finished hyperband search: the same command adopts the
    run directories with their brackets, runs nothing again and proposes nothing new."""
    path = budget_file(tmp_path, "hyperband", 9, {"parameter": "epochs", "min": 1, "max": 9,
                                                  "eta": 3})
    out = tmp_path / "out"
    args = [f"--search_file={path}", f"--run_cwd={path.parent}", f"--out_dir={out}",
            "--visible_gpus=-1", "--num_jobs=2"]
    rc, _, err = run_hpsearch(args, tmp_path, timeout=300)
    assert rc == 0, err
    before = proposals(out)
    (out / "journal.jsonl").unlink()
    rc, _, err = run_hpsearch(args, tmp_path, timeout=300)
    assert rc == 0, err
    assert "adopted 13 run directories" in err
    assert proposals(out) == before
    assert all(r["attempts"] == "1" for r in rows_of(out))
    check_budget_search(out)


def test_resuming_with_another_budget_is_refused_in_one_line(tmp_path):
    path = budget_file(tmp_path, "hyperband", 3, {"parameter": "epochs", "min": 1, "max": 9,
                                                  "eta": 3})
    out = tmp_path / "out"
    args = [f"--search_file={path}", f"--run_cwd={path.parent}", f"--out_dir={out}",
            "--visible_gpus=-1"]
    rc, _, err = run_hpsearch(args, tmp_path, timeout=300)
    assert rc == 0, err
    journal = (out / "journal.jsonl").read_text()
    budget_file(tmp_path, "hyperband", 3, {"parameter": "epochs", "min": 1, "max": 27,
                                           "eta": 3})
    rc, _, err = run_hpsearch(args, tmp_path)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "budget / pbt settings" in err and "--force_out_dir" in err
    assert (out / "journal.jsonl").read_text() == journal
