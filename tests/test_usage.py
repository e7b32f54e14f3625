"""GPU-hours and CPU-hours (hpsearch/backends/accounting.py): how shared resources are split,
and the text ``sacct`` prints (hpsearch/backends/slurm/parse.py).

The local Slurm keeps no accounts (``AccountingStorageType=accounting_storage/none``), so the
accounted path is tested here against the text Slurm documents and prints, quoted below: the
fields from sacct's man page (Slurm 22.05: "-P, --parsable2  Output will be '|' delimited
without a '|' at the end"; "ElapsedRaw  The job's elapsed time in seconds."; "AllocTres
Trackable resources. These are the resources allocated to the job/step after the job
started running.") and ``AllocTRES`` lines as ``sacct --fields JobID,AllocTRES -P`` printed
them on a cluster with typed GPUs (neilmunday/slurm-mail#142). The measured path, the one
the local Slurm uses, is checked end to end in test_packing.py and test_preemption.py.
"""

from __future__ import annotations

import pytest

from hpsearch.backends.accounting import (
    Hold,
    Ledger,
    add,
    describe,
    measured,
    run_total,
    search_totals,
)
from hpsearch.backends.slurm.backend import SlurmBackend
from hpsearch.backends.slurm.parse import parse_sacct, tres_count
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import cluster_settings

#: sacct --parsable2 --noheader --format=JobID,ElapsedRaw,AllocTRES -j 8117657_3,8117678_0,9
SACCT = """\
8117657_3|65|billing=64,cpu=9,gres/cpu=9,gres/gpu:a100_3g.20gb=1,gres/gpu=1,mem=60G,node=1
8117657_3.batch|65|cpu=9,gres/cpu=9,gres/gpu:a100_3g.20gb=1,gres/gpu=1,mem=60G,node=1
8117657_3.extern|65|billing=64,cpu=9,gres/cpu=9,gres/gpu:a100_3g.20gb=1,gres/gpu=1,mem=60G,node=1
8117678_0|7200|billing=192,cpu=16,gres/cpu=16,gres/gpu:h100=2,mem=180G,node=1
8117678_0.batch|7200|cpu=16,gres/cpu=16,gres/gpu:h100=2,mem=180G,node=1
9|0|
"""


def test_sacct_lines_give_each_job_elapsed_times_its_gpus_and_cpus():
    assert parse_sacct(SACCT) == {
        "8117657_3": {"gpu_hours": round(65 / 3600, 6), "cpu_hours": round(65 * 9 / 3600, 6)},
        "8117678_0": {"gpu_hours": 4.0, "cpu_hours": 32.0},  # typed GPUs only: added up
    }  # steps (.batch, .extern) and a job that never started (no AllocTRES) are left out


def test_tres_counts_untyped_gpus_once():
    tres = "billing=64,cpu=9,gres/cpu=9,gres/gpu:a100_3g.20gb=1,gres/gpu=1,mem=60G,node=1"
    assert (tres_count(tres, "gres/gpu"), tres_count(tres, "cpu")) == (1, 9)
    assert tres_count("cpu=2,gres/gpu:a100=2,gres/gpu:v100=1", "gres/gpu") == 3
    assert tres_count("billing=1,cpu=1,mem=50M,node=1", "gres/gpu") == 0


def test_accounting_that_is_disabled_means_measured(tmp_path, monkeypatch):
    """sacct without accounting storage prints ``Slurm accounting storage is disabled`` and
    exits 1 (as the local cluster's does): no accounts (None: never asked again), so the
    measured hours stand."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text("#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2"
                                   "\nexit 1\n")
    (bin_dir / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    backend = SlurmBackend(*cluster_settings(SearchOptions(
        out_dir=tmp_path, run_cwd=tmp_path, python="python3", run_cluster=True,
        scheduler="slurm")))
    assert backend._account(["12_0"]) is None
    (bin_dir / "sacct").write_text(f"#!/bin/sh\ncat <<'EOF'\n{SACCT}EOF\n")
    assert backend._account(["8117678_0"])["8117678_0"] == {"gpu_hours": 4.0, "cpu_hours": 32.0}


def test_a_gpu_shared_at_once_is_split_evenly_at_each_moment():
    # the docstring's example: a on GPU 0 from 0 to 6 s, b from 2 to 8 s
    a, b = Hold(0, 6, ("0",), 1), Hold(2, 8, ("0",), 1)
    assert measured(a, [b], share_cpus=True) == pytest.approx((4 / 3600, 4 / 3600))
    assert measured(b, [a], share_cpus=True) == pytest.approx((4 / 3600, 4 / 3600))
    # on another GPU of the same job, b takes nothing of a's GPU time, half of its CPUs
    other = Hold(2, 8, ("1",), 1)
    assert measured(a, [other], share_cpus=True) == pytest.approx((6 / 3600, 4 / 3600))
    # two GPUs, 4 CPUs, alone: all of them; a local slot shares no CPU
    both = Hold(0, 3600, ("0", "1"), 4)
    assert measured(both, [], share_cpus=False) == pytest.approx((2.0, 4.0))
    assert measured(a, [b], share_cpus=False)[1] == pytest.approx(6 / 3600)
    # a run still going (end None) shares until the end of the run being charged
    assert measured(a, [Hold(3, None, ("0",), 1)], True)[0] == pytest.approx(4.5 / 3600)


def test_shares_of_a_job_add_up_to_its_gpus_busy_time():
    ledger = Ledger(share_cpus=True)
    a, b, c = Hold(0, 5, ("0",), 2), Hold(1, 3, ("0",), 2), Hold(2, 9, ("0",), 2)

    def going(*holds: Hold) -> list[Hold]:  # as the backend sees them: no end yet
        return [Hold(h.start, None, h.gpus, h.cpus) for h in holds]

    charged = [ledger.charge("4711_0", b, going(a, c)), ledger.charge("4711_0", a, going(c)),
               ledger.charge("4711_0", c, [])]
    assert sum(x["gpu_hours"] for x in charged) == pytest.approx(9 / 3600, abs=1e-5)
    assert sum(x["cpu_hours"] for x in charged) == pytest.approx(2 * 9 / 3600, abs=1e-5)
    assert "4711_0" not in ledger.ended  # nothing left that a later run could overlap


def test_totals_by_how_attempts_ended():
    usage = add(None, "preempted", {"gpu_hours": 0.5, "cpu_hours": 1.0})
    usage = add(usage, "finished", {"gpu_hours": 2.0, "cpu_hours": 4.0})
    assert add(usage, "failed", {}) == usage  # an end without usage adds nothing
    assert run_total(usage) == {"gpu_hours": 2.5, "cpu_hours": 5.0}
    totals = search_totals([usage, {"failed": [0.25, 0.25]}, None])
    assert describe(totals, 0) == "2.75 (failed 0.25, preempted 0.5)"
    assert describe(totals, 1) == "5.25 (failed 0.25, preempted 1)"
