"""Each option is declared once and the command line is made from the declarations; the
schedulers are one table, and an entry of it is all the CLI needs to reach a scheduler.

Through the real CLI (``python -m hpsearch``): ``--help`` lists every declared option once,
with its declared default and help; every scheduler of the table is accepted by
``--scheduler`` and renders its driver job; a fake scheduler added to the table only (in the
process that runs the CLI) is accepted, its declared flag parsed and its code reached.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from conftest import hpsearch_env, run_hpsearch, write_search

from hpsearch.backends import SCHEDULERS
from hpsearch.backends.cluster.options import DriverJob
from hpsearch.engine.options import OPTION_GROUPS
from hpsearch.options_decl import declared


def _words(text: str) -> str:
    """``text`` with every run of whitespace one space (help text wraps at any width)."""
    return " ".join(text.split())


def _shown_default(option) -> str | None:
    """``[default: X]`` as click shows the declared default, or None where none is shown."""
    if option.kind in ("flag", "multiple") or option.default is None \
            or not option.spec.show_default:
        return None
    return '""' if option.default == "" else str(option.default)


def _check_help(out: str, groups) -> None:
    """Each option of ``groups``: one line of ``out`` starts with its flag; its help follows
    with its declared default (or none)."""
    text = _words(out)
    for group in groups:
        assert f" {group.TITLE}: " in f" {text}", f"no '{group.TITLE}:' section"
        for option in declared(group):
            starts = re.findall(rf"^  --{option.flag}\b", out, flags=re.M)
            assert len(starts) == 1, f"--{option.flag} starts {len(starts)} lines of --help"
            assert _words(option.help) in text, f"--{option.flag}'s help is not in --help"
            after = text.split(_words(option.help), 1)[1]
            default = _shown_default(option)
            if default is None:
                assert not after.startswith(" [default:"), f"--{option.flag} shows a default"
            else:
                assert after.startswith(f" [default: {default}]"), \
                    f"--{option.flag}: {after[:40]!r} is not its default {default}"


def test_every_declared_option_is_one_flag_of_help_with_its_default_and_help(tmp_path):
    assert len(OPTION_GROUPS) >= 5
    rc, out, err = run_hpsearch(["--help"], tmp_path)
    assert rc == 0, err
    _check_help(out, OPTION_GROUPS)
    rc, out, err = run_hpsearch(["wrap", "--help"], tmp_path)
    assert rc == 0, err
    _check_help(out, [DriverJob])


def test_every_scheduler_of_the_table_is_reached_from_the_cli(tmp_path):
    rc, out, _ = run_hpsearch(["--help"], tmp_path)
    choices = re.search(r"--scheduler \[([\w|]+)\]", out)
    assert choices and choices[1].split("|") == list(SCHEDULERS)
    s = write_search(tmp_path, {"x": [1, 2]})
    for name in SCHEDULERS:
        rc, out, err = run_hpsearch(["wrap", "--driver_hours=2", *s.args(),
                                     "--run_cluster", f"--scheduler={name}"], tmp_path)
        if not SCHEDULERS[name].batch:  # no batch jobs, no driver job: one line says so
            assert rc == 2 and len(err.strip().splitlines()) == 1 and name.upper() in err, err
            continue
        assert rc == 0 and out.startswith("#!"), (name, err)
        assert "-m hpsearch" in out and "--grid_module=hpconf" in out, out


FAKE = '''
import sys
from dataclasses import dataclass
from typing import ClassVar

from hpsearch.backends import SCHEDULERS, Scheduler
from hpsearch.backends.cluster.options import ClusterOptions
from hpsearch.options_decl import option
from hpsearch.runs.model import Resources


@dataclass(frozen=True, kw_only=True)
class FakeOptions:
    TITLE: ClassVar[str] = "Fake"
    fake_queue: str = option("q0", "Fake: the queue.")


def validate(options):
    raise ValueError(f"the fake scheduler got --fake_queue={options.fake_queue}")


def driver_script(options, argv, cwd):
    return f"#!fake {options.fake_queue} {options.num_hours}\\n"


def resources(options, gpu_memory_mib):
    return Resources(gpus=0, gpu_memory_mib=gpu_memory_mib)


def directives(resources):
    return [f"--fake-gpus={resources.gpus}"]


@dataclass(frozen=True, kw_only=True)
class FakeJob(ClusterOptions, FakeOptions):
    pass


SCHEDULERS["fake"] = Scheduler(
    FakeOptions, FakeJob, lambda options, mem, partition: {"fake_queue": partition or "dq"},
    backend="hpsearch.backends.local:LocalBackend", validate="__main__:validate",
    cancel_command="true", cancel="__main__:validate", driver_script="__main__:driver_script",
    resources="__main__:resources", settings="__main__:validate",
    directives="__main__:directives")

from hpsearch.cli import main  # noqa: E402  (the CLI is made from the table as it is now)

sys.exit(main(sys.argv[1:]))
'''


def run_with_fake(args, cwd):
    script = cwd / "fake_scheduler.py"
    script.write_text(textwrap.dedent(FAKE))
    done = subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=hpsearch_env(),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout, done.stderr


def test_a_scheduler_added_to_the_table_only_is_accepted_with_its_flags(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2]})
    flags = [*s.args(), "--run_cluster", "--scheduler=fake", "--fake_queue=q7"]
    rc, out, err = run_with_fake(flags, tmp_path)
    assert rc == 2 and err == "hpsearch: error: the fake scheduler got --fake_queue=q7\n", err
    assert not s.out_dir.exists()
    rc, out, err = run_with_fake(["wrap", "--driver_hours=3", "--driver_partition=p1", *flags],
                                 tmp_path)
    assert rc == 0 and out == "#!fake p1 3.0\n", err
    rc, out, err = run_with_fake(["--help"], tmp_path)
    assert f"--scheduler [{'|'.join([*SCHEDULERS, 'fake'])}]" in out and "--fake_queue" in out
