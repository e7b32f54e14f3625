"""``hpsearch seeds``: the best configurations rerun with several seeds as a search of its
own in OUT_DIR/seeds/ (the original command's backend flags, resumable), and the mean and
std of every metric per configuration."""

from __future__ import annotations

import csv
import json
import statistics

from conftest import run_hpsearch, write_search

#: the metric depends on the configuration and on the seed
SEEDED_SIM = '''
import json, os, sys
cfg = dict(a[2:].partition("=")[::2] for a in sys.argv[1:])
os.makedirs(cfg["out_dir"], exist_ok=True)
with open(os.path.join(cfg["out_dir"], "argv.json"), "w") as f:
    json.dump(sys.argv[1:], f)
acc = float(cfg["x"]) + 0.01 * int(cfg.get("seed", 0))
with open(os.path.join(cfg["out_dir"], "perf.txt"), "w") as f:
    f.write(f"acc {acc!r}\\nloss {-acc!r}\\nfinished 1\\n")
'''


def test_seeds_reruns_the_best_configurations(tmp_path):
    s = write_search(tmp_path, {"x": [1, 3, 2], "y": ['"a b"', "c"]})
    (s.sim_dir / "sim.py").write_text(SEEDED_SIM)
    rc, _, err = run_hpsearch(s.args("--num_jobs=2", "--retries=1"), tmp_path)
    assert rc == 0, err
    rc, out, err = run_hpsearch(["seeds", str(s.out_dir), "--top", "2", "--seeds", "3",
                                 "--seed_arg", "seed"], tmp_path, timeout=120)
    assert rc == 0, err
    seeds = s.out_dir / "seeds"
    meta = json.loads((seeds / "search.json").read_text())
    assert "--num_jobs=2" in meta["command"] and "--retries=1" in meta["command"]
    assert "--visible_gpus=-1" in meta["command"]
    with open(seeds / "search_results.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"finished"}
    assert sorted((r["x"], r["seed"]) for r in rows) == sorted([("3", str(k)) for k in
                                                                range(3)] * 2)
    assert sorted({r["y"] for r in rows}) == ["a b", "c"]  # the quoted value came back
    argvs = [json.loads((seeds / "runs" / r["run_id"] / "out" / "argv.json").read_text())
             for r in rows]
    assert all(any(a == "--y=a b" for a in argv) or "--y=c" in argv for argv in argvs)
    with open(seeds / "seed_summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert [(r["rank"], r["x"], r["seeds"]) for r in summary] == [("1", "3", "3"),
                                                                  ("2", "3", "3")]
    for row in summary:
        values = [3 + 0.01 * k for k in range(3)]
        assert float(row["acc_mean"]) == statistics.fmean(values)
        assert float(row["acc_std"]) == statistics.stdev(values)
    assert "acc 3.01 \u00b1 0.01" in out
    # again: resumed, nothing runs twice; more seeds only add runs
    rc, out, err = run_hpsearch(["seeds", str(s.out_dir), "--top", "2", "--seeds", "4",
                                 "--seed_arg", "seed"], tmp_path, timeout=120)
    assert rc == 0, err
    with open(seeds / "search_results.csv", newline="") as f:
        again = list(csv.DictReader(f, delimiter=";"))
    assert len(again) == 8
    assert {r["run_id"] for r in rows} <= {r["run_id"] for r in again}
    assert all(r["attempts"] == "1" for r in again)
    assert "(4/4 seeds finished)" in out


def test_seeds_of_a_search_without_finished_runs(tmp_path):
    s = write_search(tmp_path, {"x": [1], "mode": ["exit"]})
    rc, _, _ = run_hpsearch(s.args(), tmp_path)
    assert rc == 1
    rc, _, err = run_hpsearch(["seeds", str(s.out_dir)], tmp_path)
    assert rc == 2 and "no finished run" in err and err.count("\n") == 1
    assert not (s.out_dir / "seeds").exists()
