"""Job-script templates: where they live and how they are rendered.

Each scheduler's templates live next to it, in ``hpsearch/backends/<scheduler>/templates/``
(data files, no ``__init__.py``), and are named by their path under ``hpsearch/backends``
(``slurm/templates/slurm_array.sbatch.j2``); they are always read through
:mod:`importlib.resources`, so an installed wheel, an editable install and a zip import all
find them. A user may name their
own template file (``--job_template``); it is rendered with the same variables and filters.

Rendering is strict: a variable the template uses but the caller did not pass is an
error, never an empty string. The ``shquote`` filter quotes one word for a POSIX shell::

    {{ "it's" | shquote }}   ->   'it'"'"'s'
"""

from __future__ import annotations

import shlex
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

#: the package the built-in templates' names are relative to
TEMPLATES_PACKAGE = "hpsearch.backends"


def builtin_source(name: str) -> str:
    """The text of the built-in template ``name``, a path under ``hpsearch/backends``
    (jinja2 reports a missing one)."""
    try:
        return resources.files(TEMPLATES_PACKAGE).joinpath(name).read_text()
    except (FileNotFoundError, OSError) as exc:
        raise jinja2.TemplateNotFound(name) from exc


def shquote(value: Any) -> str:
    """Quote ``value`` (turned into a string) as one shell word."""
    return shlex.quote(str(value))


def environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    """A strict jinja2 environment with the ``shquote`` filter."""
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shquote"] = shquote
    return env


def load_template(name: str, user_template: Path | None = None) -> jinja2.Template:
    """The built-in template ``name``, or the user's file ``user_template`` if given.

    Raises ``ValueError`` (one line) when the user's file is missing or not valid jinja2.
    """
    if user_template is None:
        return environment(jinja2.FunctionLoader(builtin_source)).get_template(name)
    path = Path(user_template).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"job template {path} does not exist; pass an existing file to "
                         "--job_template or leave it out to use the built-in one")
    try:
        return environment(jinja2.FileSystemLoader(str(path.parent))).get_template(path.name)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"job template {path}, line {exc.lineno}: {exc.message}") from exc


def render(name: str, context: dict[str, Any], user_template: Path | None = None) -> str:
    """Render template ``name`` (or ``user_template``) with ``context``.

    Raises ``ValueError`` (one line) when the template uses a variable that is not in
    ``context``.
    """
    template = load_template(name, user_template)
    try:
        return template.render(**context)
    except jinja2.UndefinedError as exc:
        where = user_template or name
        raise ValueError(f"job template {where}: {exc.message}; the variables available "
                         f"are: {', '.join(sorted(context))}") from exc
