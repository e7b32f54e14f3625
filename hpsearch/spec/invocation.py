"""The command of every run: a script's command line or a Python function, maybe a config copy.

:class:`ScriptCommand` is the command model (``_SCRIPT_NAME`` split by
:func:`parse_script_command`); one function, :func:`command_of`, builds it for grid modules
and search files::

    script: train.py               <python> train.py --out_dir=<run>/out --lr=0.01
    script: train.py:my_objective  <python> -m hpsearch.objective_runner train.py:my_objective
                                       performance_overview.txt --out_dir=<run>/out --lr=0.01
    config_template: model.yml     <python> train.py --out_dir=<run>/out --seed=1
                                       --config=<run>/model.yml   (nested keys in the copy)

A function target is ``FILE.py:NAME`` (interpreter flags may come before it, no words after
it); the file must define ``NAME`` as a function at its top level, which is checked by
reading the file (:mod:`ast`), never by importing it. The runner is
:mod:`hpsearch.runs.objective_runner`; the patched config file is :mod:`hpsearch.spec.configfile`.
"""

from __future__ import annotations

import ast
import difflib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.spec.configfile import DEFAULT_ARG, ConfigFile, load_config_file
from hpsearch.spec.distributions import Condition, Distribution, ParameterValues
from hpsearch.spec.hydra import HydraArgs, hydra_args
from hpsearch.spec.values import render_args

RUNNER_MODULE = "hpsearch.objective_runner"
_FUNCTION = re.compile(r"(?P<file>.+\.py):(?P<name>[A-Za-z_]\w*)")
#: interpreter flags that take the next word as their value
FLAGS_WITH_VALUE = {"-W", "-X", "-Q"}


@dataclass(frozen=True)
class ScriptCommand:
    """``_SCRIPT_NAME`` split into interpreter flags, the script (or ``-m`` module), words.

    ``'-W ignore train.py sub'`` -> flags ``("-W", "ignore")``, script ``"train.py"``,
    leading ``("sub",)``; the run's argv is ``[python, *flags, script, *leading, ...]``.
    ``config_file``: the patched config file each run gets (:mod:`hpsearch.spec.configfile`).
    ``hydra``: set for a Hydra app, which takes its parameters as overrides
    (:mod:`hpsearch.spec.hydra`).
    """

    flags: tuple[str, ...]
    script: str
    leading: tuple[str, ...]
    module: bool = False
    config_file: ConfigFile | None = None
    hydra: HydraArgs | None = None

    def argv_prefix(self, python: str) -> list[str]:
        target = ["-m", self.script] if self.module else [self.script]
        return [python, *self.flags, *target, *self.leading]

    def render(self, config: dict[str, Any]) -> list[str]:
        """A configuration's argument words: flags (``--lr=0.01``) or Hydra overrides."""
        return self.hydra.words(config) if self.hydra is not None else render_args(config)


def parse_script_command(text: str, run_cwd: Path, check: bool = True,
                         what: str = "_SCRIPT_NAME") -> ScriptCommand:
    """Split ``text`` (see :class:`ScriptCommand`); with ``check`` the script must exist."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{what} {text!r} cannot be split into words ({exc}); fix its "
                         "quoting") from None
    flags: list[str] = []
    i = 0
    while i < len(words) and words[i].startswith("-"):
        if words[i] == "-m":
            if i + 1 >= len(words):
                raise UsageError(f"{what} {text!r} ends with -m; name the module to run")
            return ScriptCommand(tuple(flags), words[i + 1], tuple(words[i + 2:]), module=True)
        flags.append(words[i])
        if words[i] in FLAGS_WITH_VALUE and i + 1 < len(words):
            flags.append(words[i + 1])
            i += 1
        i += 1
    if i >= len(words):
        raise UsageError(f"{what} {text!r} names no script; give e.g. 'train.py'")
    script, leading = words[i], tuple(words[i + 1:])
    if check and not (run_cwd / script).is_file():
        raise UsageError(f"{what} {text!r}: script {script!r} not found in --run_cwd "
                         f"{run_cwd}; set --run_cwd to the folder holding the script")
    return ScriptCommand(tuple(flags), script, leading)


def command_of(script: str, run_cwd: Path, check: bool, what: str, summary_filename: str,
               parameters: dict[str, ParameterValues], conditions: list[Condition],
               template: Path | None = None, config_arg: str = DEFAULT_ARG,
               allow_new_keys: bool = False, arg_format: str = "flags",
               hydra_config: Path | None = None) -> ScriptCommand:
    """The command of every run (module docstring); without ``check`` nothing is read but
    the Hydra app's config (``hydra_config``: the overrides depend on it)."""
    command = parse_script_command(script, run_cwd, check=False, what=what)
    target = None if command.module else _FUNCTION.fullmatch(command.script)
    if arg_format == "hydra":
        return _hydra_command(script, run_cwd, check, what, template, target is not None,
                              hydra_config)
    if hydra_config is not None:
        raise UsageError(f"hydra_config {str(hydra_config)!r} is set but the arguments are "
                         "flags: add arg_format: hydra (--arg_format=hydra) or drop it")
    if target is None:
        command = parse_script_command(script, run_cwd, check, what)
    else:
        if command.leading:
            raise UsageError(f"{what} {script!r}: a function objective takes no words after "
                             f"{command.script}; its parameters come from the search")
        if check:
            check_function(run_cwd, target["file"], target["name"], what)
        command = ScriptCommand(command.flags, RUNNER_MODULE,
                                (command.script, summary_filename), module=True)
    if template is None and (config_arg != DEFAULT_ARG or allow_new_keys):
        given = "allow_new_keys" if allow_new_keys else f"config_arg {config_arg!r}"
        raise UsageError(f"{given} is set but there is no config_template: add "
                         "--config_template=model.yml (config_template: / _CONFIG_TEMPLATE) "
                         "or drop it")
    if template is None or not check:
        return command
    if target is not None:
        raise UsageError(f"{what} {script!r} is a function, which gets its parameters as a "
                         "dict; config_template is for a script that reads a config file: "
                         "drop one of them")
    config = load_config_file(template, config_arg, allow_new_keys,
                              _value_lists(parameters, conditions))
    return replace(command, config_file=config)


def _hydra_command(script: str, run_cwd: Path, check: bool, what: str,
                   template: Path | None, function: bool, hydra_config: Path | None
                   ) -> ScriptCommand:
    """The command of a Hydra app: the script, its parameters as overrides."""
    if function:
        raise UsageError(f"{what} {script!r} is a function, which gets its parameters as a "
                         "dict; arg_format: hydra is for a Hydra app's script: drop one")
    if template is not None:
        raise UsageError("config_template and arg_format: hydra both pass the parameters; a "
                         "Hydra app composes its own config: drop config_template")
    command = parse_script_command(script, run_cwd, check, what)
    return replace(command, hydra=hydra_args(hydra_config))


def _value_lists(parameters: dict[str, ParameterValues], conditions: list[Condition]
                 ) -> dict[str, list[Any] | None]:
    """Every parameter's values (None: a distribution), conditions' replacements added."""
    values: dict[str, list[Any] | None] = {
        name: None if isinstance(v, Distribution) else list(v) for name, v in parameters.items()}
    for _match, replaced in conditions:
        for name, choices in replaced.items():
            values[name] = [*(values.get(name) or []), *choices]
    return values


def _top_level_names(body: Iterable[ast.stmt]) -> dict[str, str]:
    """What a module's top level binds: name -> function | async | class | other."""
    names: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = "function"
        elif isinstance(node, ast.AsyncFunctionDef):
            names[node.name] = "async"
        elif isinstance(node, ast.ClassDef):
            names[node.name] = "class"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update({(a.asname or a.name).split(".")[0]: "other" for a in node.names})
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update({t.id: "other" for t in targets if isinstance(t, ast.Name)})
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody"):
                names.update(_top_level_names(getattr(node, block, [])))
            for handler in getattr(node, "handlers", []):
                names.update(_top_level_names(handler.body))
    return names


def check_function(run_cwd: Path, file_name: str, name: str, what: str) -> None:
    """Refuse (one line) a function target whose file or function does not exist."""
    path = run_cwd / file_name
    if not path.is_file():
        raise UsageError(f"{what} {file_name}:{name}: {file_name!r} not found in --run_cwd "
                         f"{run_cwd}; set --run_cwd to the folder holding it")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as exc:
        raise UsageError(f"{what}: {path} does not parse ({exc.msg} at line {exc.lineno}); "
                         "fix it there") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what}: cannot read {path} ({exc})") from None
    names = _top_level_names(tree.body)
    kind = names.get(name)
    if kind is None:
        functions = [n for n, k in names.items() if k == "function"]
        close = difflib.get_close_matches(name, functions, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else \
            f"its functions: {', '.join(functions[:8]) or 'none'}"
        raise UsageError(f"{what} {file_name}:{name}: {file_name} defines no {name!r} at its "
                         f"top level ({hint})")
    if kind == "class":
        raise UsageError(f"{what} {file_name}:{name}: {name} is a class (a Ray Tune trainable?);"
                         f" hpsearch runs a function {name}(config, reporter) or "
                         f"{name}(config) returning a dict: wrap the class in one")
    if kind == "async":
        raise UsageError(f"{what} {file_name}:{name}: {name} is async; give a plain function "
                         "(e.g. one that calls asyncio.run)")
