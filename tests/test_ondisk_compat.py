"""Nothing a user has on disk breaks: search directories written by an earlier hpsearch (the
commit named in ``tests/data/ondisk/README.md``, by ``tests/data/ondisk/make.py``) still
resume and still read.

* ``grid/``: a grid search of 12 configurations killed with ``kill -9`` half way: six runs
  finished and journaled, one ended after the driver died (only its run directory knows),
  one started and never ended, four never started. The same command resumes it.
* ``tpe/``: a finished TPE search with ASHA-pruned runs (a compacted journal, curves).
  ``status``, ``collect``, ``report`` and ``export`` read it and agree on its counts.

Each test works on a copy in ``tmp_path`` (the committed data is never written to).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from conftest import run_hpsearch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

DATA = Path(__file__).resolve().parent / "data" / "ondisk"
#: where make.py ran the searches: the root of every absolute path they recorded
RECORDED_ROOT = "/tmp/hpsearch-ondisk"
#: the results-table column that legitimately differs in a copy: where its run directory is now
WHERE_COLUMN = "run_dir"
#: Optuna's state for each status of ours (the export's mapping)
OPTUNA_STATES = {"finished": TrialState.COMPLETE, "pruned": TrialState.PRUNED}


def copy_of(name: str, tmp_path: Path) -> Path:
    """A copy of ``DATA/<name>`` (the command's working directory) under ``tmp_path``."""
    return Path(shutil.copytree(DATA / name, tmp_path / name))


def relocate(work: Path, name: str) -> None:
    """Point ``out/search.json`` of a copied search at the copy: replace the recorded root
    (``RECORDED_ROOT/<name>``) of its absolute paths with ``work``.

    Why: the same command refuses a search directory whose recorded grid module path
    (``source``) differs from the one it loads now ("holds a search whose grid module /
    search file is ..."), and ``source`` is an absolute path, so a moved or copied search
    directory does not resume as it is. A user who moves one edits search.json so (or
    passes ``--force_out_dir``, which also lifts the other checks). Only search.json
    changes: the journal and the run files stay as the old code wrote them, and the resume
    must take every path of the runs from the command, not from them."""
    path = work / "out" / "search.json"
    old, new = f"{RECORDED_ROOT}/{name}", str(work)
    meta = json.loads(path.read_text())
    meta = {k: new + v[len(old):] if isinstance(v, str) and v.startswith(old) else v
            for k, v in meta.items()}
    path.write_text(json.dumps(meta, indent=1) + "\n")


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def csv_rows(path: Path, delimiter: str = ";") -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def ended_before(out: Path) -> dict[tuple[int, int], str]:
    """Configurations ``(x, y)`` whose run ended before the kill (an ``exit_code`` in its run
    directory), with their run ids."""
    ended = {}
    for run_dir in (out / "runs").iterdir():
        if (run_dir / "exit_code").exists():
            config = json.loads((run_dir / "run.json").read_text())["config"]
            ended[(config["x"], config["y"])] = run_dir.name
    return ended


def test_killed_grid_search_resumes_without_rerunning_a_finished_run(tmp_path):
    """The same command finishes the killed grid search: the seven runs that ended before
    (six journaled, one only in its run directory) are adopted, not started again; the one
    that never ended and the four never started run once each; every configuration ends
    finished exactly once."""
    work = copy_of("grid", tmp_path)
    relocate(work, "grid")
    out, starts = work / "out", work / "sim" / "starts.jsonl"
    journaled = {e["run"] for e in jsonl(out / "journal.jsonl") if e["ev"] == "end"}
    ended = ended_before(out)
    # the data is what it says: 6 ends journaled, a 7th only on disk, 8 runs started
    assert len(journaled) == 6 and journaled < set(ended.values()) and len(ended) == 7
    assert len(jsonl(starts)) == 8
    command = json.loads((out / "search.json").read_text())["command"]

    rc, _, err = run_hpsearch(command, work, timeout=180)
    assert rc == 0, err
    started_again = Counter((s["x"], s["y"]) for s in jsonl(starts)[8:])
    everything = {(x, y) for x in range(6) for y in range(2)}
    assert not set(started_again) & set(ended), f"runs that had ended ran again: {started_again}"
    assert started_again == Counter(everything - set(ended))
    rows = csv_rows(out / "search_results.csv")
    assert sorted((int(r["x"]), int(r["y"])) for r in rows) == sorted(everything)
    assert {r["status"] for r in rows} == {"finished"}
    assert all(r["run_id"] == ended[(int(r["x"]), int(r["y"]))]
               for r in rows if (int(r["x"]), int(r["y"])) in ended)


def test_finished_tpe_search_reads_with_status_collect_report_export(tmp_path):
    """``status``, ``collect``, ``report`` and ``export --format json|csv|optuna`` read the
    finished TPE search and agree with the results table written with it: the same runs,
    finished and pruned alike; ``collect`` rebuilds that table cell for cell but for
    ``run_dir`` (the copy's own path); the Optuna journal loads with Optuna's reader, with
    each trial's state and curve. Reading changes neither the journal nor search.json."""
    out = copy_of("tpe", tmp_path) / "out"
    committed = csv_rows(out / "search_results.csv")
    counts = Counter(r["status"] for r in committed)
    assert counts["finished"] and counts["pruned"] and set(counts) == set(OPTUNA_STATES)
    journal, meta = (out / "journal.jsonl").read_bytes(), (out / "search.json").read_bytes()

    rc, text, err = run_hpsearch(["status", str(out)], tmp_path)
    assert rc == 0, err
    assert (f"{counts['finished']} finished, 0 failed, {counts['pruned']} pruned, 0 running, "
            f"0 pending (of {len(committed)})") in text

    rc, _, err = run_hpsearch(["collect", str(out)], tmp_path)
    assert rc == 0, err
    collected = csv_rows(out / "search_results.csv")
    assert [r[WHERE_COLUMN] for r in collected] == [str(out / "runs" / r["run_id"])
                                                    for r in collected]
    assert [{**r, WHERE_COLUMN: ""} for r in collected] == [{**r, WHERE_COLUMN: ""}
                                                            for r in committed]

    rc, _, err = run_hpsearch(["report", str(out)], tmp_path)
    assert rc == 0, err
    html = (out / "report.html").read_text()
    assert f'data-status="pruned" data-count="{counts["pruned"]}">{counts["pruned"]} pruned' \
        in html

    for fmt in ("json", "csv", "optuna"):
        rc, _, err = run_hpsearch(["export", str(out), "--format", fmt], tmp_path)
        assert rc == 0, err
    runs = json.loads((out / "export.json").read_text())["runs"]
    assert {r["run_id"]: r["status"] for r in runs} == {r["run_id"]: r["status"]
                                                        for r in committed}
    assert all(r["curve"] for r in runs)
    assert csv_rows(out / "export.csv", delimiter=",") == collected
    study = optuna.load_study(study_name="out", storage=JournalStorage(
        JournalFileBackend(str(out / "optuna_journal.log"))))
    assert {t.user_attrs["run_id"]: t.state for t in study.trials} == {
        r["run_id"]: OPTUNA_STATES[r["status"]] for r in committed}
    assert all(t.intermediate_values for t in study.trials)
    assert (out / "journal.jsonl").read_bytes() == journal
    assert (out / "search.json").read_bytes() == meta
