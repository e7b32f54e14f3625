"""The documentation's commands work as written, and every flag is documented where it is defined.

Every fenced ``bash``/``sh``/``console`` block of README.md, docs/tutorial.md and
docs/how-to/*.md runs here verbatim, block after block in page order, in one fresh directory
per page that holds a copy of the repository's ``sims/`` (so ``sims/quadratic`` and
``out/first`` mean what they mean on the page), with the installed ``hpsearch`` and ``python``
first on PATH. A page whose commands name Slurm runs on the local Slurm (skipped with
``HPSEARCH_SKIP_SLURM=1``, as every Slurm test), one that names LSF on the LSF emulator, one
that names PBS on the PBS emulator (as OpenPBS), one that names Grid Engine on the local
Grid Engine cell (``HPSEARCH_SKIP_SGE=1`` skips it), one that names ``--hosts`` on the SSH hosts
of scripts/ssh/start.sh (``HPSEARCH_SKIP_SSH=1`` skips it). A
block that cannot run here is preceded by ``<!-- not run: <reason> -->``; those are listed,
and a marker without a reason fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from browser import open_browser, requests_made, require_browser
from conftest import REPO, hpsearch_env
from sge_fixture import sge_cell  # noqa: F401  (fixture: the local Grid Engine)
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture: the local Slurm)
from ssh_fixture import STATE as SSH_STATE
from ssh_fixture import ssh_hosts  # noqa: F401  (fixture: the local SSH hosts)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)
from test_pbs_emulator import openpbs  # noqa: F401  (fixture: PBS emulator, as OpenPBS)

from hpsearch.cli.app import main_group

RUN_LANGUAGES = ("bash", "sh", "console")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*not run(?P<colon>:?)(?P<reason>.*?)-->\s*$")
#: seconds one command may take (a whole page takes well under a minute here)
COMMAND_TIMEOUT = 300

RUN_PAGES = sorted([REPO / "README.md", REPO / "docs" / "tutorial.md",
                    *(REPO / "docs" / "how-to").glob("*.md")])


@dataclass
class Block:
    """One fenced block of a page: its language, text, first line, and why it is not run."""

    page: Path
    lang: str
    text: str
    line: int
    not_run: str | None  # the marker's reason; "" for a marker without one

    def commands(self) -> list[str]:
        """The commands a user types, one per entry (``\\`` continuations joined)."""
        lines = self.text.splitlines()
        if self.lang == "console":
            lines = [ln[2:] if ln.startswith("$ ") else "" for ln in lines]
        commands: list[str] = []
        pending = ""
        for line in lines:
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line + "\n"
            if not line.endswith("\\"):
                commands.append(pending.rstrip("\n"))
                pending = ""
        assert not pending, f"{self.where()}: a command ends in a line continuation"
        return commands

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` with the ``not run`` marker right before it, if any."""
    found: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, start = len(opening["indent"]), i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        marker = MARKER.match(before)
        reason = (marker["reason"].strip() if marker["colon"] else "") if marker else None
        found.append(Block(page, opening["lang"], "\n".join(body), start + 1, reason))
        i += 1
    return found


def run_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang in RUN_LANGUAGES and b.not_run is None]


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def needs(page: Path) -> set[str]:
    """Which schedulers the page's commands talk to: ``slurm``, ``lsf``, ``pbs``, ``sge``,
    ``ssh`` (the SSH hosts)."""
    text = "\n".join(b.text for b in run_blocks(page))
    found = set()
    if re.search(r"--scheduler=slurm|\bsbatch\b", text):
        found.add("slurm")
    if re.search(r"--scheduler=lsf|\bbsub\b", text):
        found.add("lsf")
    if re.search(r"--scheduler=pbs", text):
        found.add("pbs")
    if re.search(r"--scheduler=sge", text) or (re.search(r"\bqsub\b", text)
                                                and "pbs" not in found):
        found.add("sge")
    if re.search(r"--hosts\b", text):
        found.add("ssh")
    return found


def run_command(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run one documented command with bash in ``cwd``; its whole process group is killed
    if it outlives :data:`COMMAND_TIMEOUT`."""
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return -1, f"(killed after {COMMAND_TIMEOUT} s)\n{output}"
    return proc.returncode, output


@pytest.mark.parametrize("page", RUN_PAGES, ids=page_id)
def test_the_commands_of_a_page_run_verbatim(page, tmp_path, request):
    for scheduler in sorted(needs(page)):
        request.getfixturevalue({"slurm": "slurm_cluster", "lsf": "lsf", "pbs": "openpbs",
                                 "sge": "sge_cell", "ssh": "ssh_hosts"}[scheduler])
    work = tmp_path / "work"
    shutil.copytree(REPO / "sims", work / "sims",
                    ignore=shutil.ignore_patterns("__pycache__", "out"))
    env = hpsearch_env()  # the lsf fixture's PATH included
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    if "ssh" in needs(page):  # gpu1..gpu3 are the SSH hosts' names in their configuration
        env["HPSEARCH_SSH_CONFIG"] = str(SSH_STATE / "ssh_config")
    ran = 0
    for block in run_blocks(page):
        for command in block.commands():
            code, output = run_command(command, work, env)
            assert code == 0, (f"{block.where()}: this command exited {code}:\n{command}\n"
                               f"--- its output (end) ---\n{output[-3000:]}")
            ran += 1
    assert ran or any(b.not_run for b in blocks(page)), \
        f"{page_id(page)} has no shell block: are its commands fenced as bash?"


def test_every_not_run_marker_names_its_reason():
    """Lists every block the docs test skips, and why; a marker without a reason fails."""
    skipped = [b for page in RUN_PAGES for b in blocks(page) if b.not_run is not None]
    for block in skipped:
        print(f"not run: {block.where()}: {block.not_run}")
    print(f"{len(skipped)} blocks not run")
    assert all(b.not_run for b in skipped), [b.where() for b in skipped if not b.not_run]
    assert all(b.lang in RUN_LANGUAGES for b in skipped), \
        [b.where() for b in skipped if b.lang not in RUN_LANGUAGES]


def test_the_readme_shows_the_first_search_verbatim():
    """README's "Your first search" shows sims/first/ as it is, and fits a screen or two."""
    readme = (REPO / "README.md").read_text()
    for name, lang in (("train.py", "python"), ("search.yaml", "yaml")):
        text = (REPO / "sims" / "first" / name).read_text()
        assert f"```{lang}\n{text}```\n" in readme, f"README shows another sims/first/{name}"
    section = readme.split("## Your first search\n", 1)[1].split("\n## ", 1)[0]
    assert len(section.strip().splitlines()) <= 60
    assert len(readme.encode()) <= 12 * 1024


def test_the_readme_runs_the_first_search():
    """The one command of README's "Your first search" that starts a search is the
    tutorial's, so the two pages cannot drift apart."""
    first = [c for b in run_blocks(REPO / "README.md") for c in b.commands()
             if "--search_file=" in c]
    tutorial = [c for b in run_blocks(REPO / "docs" / "tutorial.md") for c in b.commands()]
    assert first and first[0] in tutorial


def _commands(group: click.Group) -> list[tuple[str, click.Command]]:
    return [("hpsearch", group)] + [(f"hpsearch {name}", cmd)
                                    for name, cmd in sorted(group.commands.items())]


def test_every_option_has_help():
    """The CLI reference is generated from these texts: a flag without one is undocumented."""
    missing = [f"{name} {option.opts[-1]}" for name, command in _commands(main_group)
               for option in command.params
               if isinstance(option, click.Option) and not option.hidden
               and not (option.help or "").strip()]
    assert not missing, f"options without help text: {missing}"
    assert all((command.help or "").strip() for _, command in _commands(main_group))


#: what a page fetched from the network (the browser's own chrome:// pages are not)
NETWORK_SCHEMES = ("http:", "https:", "ws:", "wss:", "ftp:")


def test_the_built_site_opens_offline_and_fetches_nothing(tmp_path):
    """``mkdocs build`` into a folder, then real Chromium opens its pages from ``file://``:
    each page shows its content, a link leads to the next page, and nothing is asked of
    the network (no fonts, no CDN script)."""
    require_browser()
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(site)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    driver = open_browser(tmp_path / "profile")
    try:
        driver.get((site / "index.html").as_uri())
        assert "hpsearch" in driver.find_element("css selector", "article h1").text
        link = driver.find_element("css selector", 'a[href="tutorial.html"]')
        driver.get(link.get_attribute("href"))
        assert driver.find_element("css selector", "article h1").text
        driver.get((site / "reference" / "rest-api.html").as_uri())
        assert "/requests" in driver.find_element("css selector", "article").text
        network = [u for u in requests_made(driver) if u.startswith(NETWORK_SCHEMES)]
        assert not network, network
    finally:
        driver.quit()
