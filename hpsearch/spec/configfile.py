"""A config template patched per run: nested-key parameters go into each run's own copy.

A search names the template (YAML or JSON, by its suffix ``.json``) and the flag that
passes it; every run gets its own patched copy in its run directory::

    config_template: model.yml        # relative to the search file (grid module:
                                      # _CONFIG_TEMPLATE, relative to the module's folder)
    config_arg: config                # the default: --config=<run_dir>/model.yml
    allow_new_keys: false             # the default
    parameters:
      optimizer:learning_rate: {method: loguniform, low: 1.0e-7, high: 1.0e-2}
      model.dense_dropouts.0: [0.0, 0.2]    # '.' works too; a list item by its index
      epochs: [5, 10]                       # a top-level key of the template
      seed: [1, 2]                          # not in the template: stays --seed=1

Which parameters go into the file (the others stay command-line flags):

* a name with ``:`` (hyper_opt's separator) is a key path: ``optimizer:learning_rate`` sets
  ``learning_rate`` under ``optimizer``; a list is indexed by a number (``layers:0:units``);
* a top-level key of the template (``epochs``) is set as it is, even with a ``.`` in it;
* a name with ``.`` whose first part is a top-level key of the template is a key path
  (``optimizer.learning_rate``); one that is also a top-level key is refused as ambiguous;
* any other name with ``.`` stays a flag (scripts take flags like ``--trainer.seed``), unless
  its first part is a near miss of a top-level key (``optm.lr`` for ``optim.lr``): that is a
  typo, refused naming the nearest key path.

A key path the template lacks is a bad input naming the path and its nearest keys, unless
new keys are allowed: then missing mapping keys are created (a list index must exist).
A value replaces the key's whole value (a scalar, a list or a mapping) and keeps its JSON
type; a text wrapped in one pair of quotes loses them, as on a command line. YAML is
round-tripped (``ruamel.yaml``): comments, key order, quoting and the template's own
number spellings stay; a new float is written with a dot and a signed exponent
(``1.0e-07``) and a new text YAML 1.1 would misread (``yes``, ``1e-3``) is quoted, so PyYAML
reads the new values as ruamel does. JSON keeps key order and the template's indentation.
"""

from __future__ import annotations

import difflib
import functools
import io
import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.spec.datafile import check_nesting, load_json, too_deep, yaml_error
from hpsearch.spec.reserved import RESERVED_FILES
from hpsearch.spec.values import storable, strip_wrapping_quotes

#: one step of a key path: a mapping key, or a list index
Segment = str | int
DEFAULT_ARG = "config"
_INDEX = re.compile(r"\d+")
#: how alike (difflib's ratio) a dotted name's first part and a top-level key must be for the
#: name to be taken as a misspelt key path rather than a flag
_NEAR_MISS = 0.8


@dataclass(frozen=True)
class ConfigFile:
    """A checked template and the key path of every parameter that goes into it."""

    template: Path
    arg: str
    text: str
    paths: dict[str, tuple[Segment, ...]]
    allow_new_keys: bool = False

    @property
    def file_name(self) -> str:
        return self.template.name

    @property
    def is_json(self) -> bool:
        return self.template.suffix.lower() == ".json"

    def path_in(self, run_dir: Path) -> Path:
        """Where a run's patched copy lives (fixed, so a restart writes the same file)."""
        return run_dir / self.file_name

    def argv_words(self, words: list[str], run_dir: Path) -> list[str]:
        """A run's argument words: the patched parameters' words dropped (and an earlier
        ``--<arg>=``), ``--<arg>=<run_dir>/<file name>`` added."""
        kept = [w for w in words if _flag_name(w) not in self.paths and _flag_name(w) != self.arg]
        return [*kept, f"--{self.arg}={self.path_in(run_dir)}"]

    def patched(self, config: Mapping[str, Any]) -> str:
        """The template's text with the values of ``config`` set."""
        data = _load(self.text, self.is_json, self.template)
        for name, path in self.paths.items():
            if name in config:
                value = file_value(config[name])
                _set(data, path, value if self.is_json else _yaml_value(value))
        return _dump_json(data, self.text) if self.is_json else _dump_yaml(data, self.text)

    def describe(self, config: Mapping[str, Any]) -> str:
        """What a run's copy sets, as ``--dry_run`` shows it before the copy exists:
        ``model.yml with optimizer:learning_rate=0.001, trainer.epochs=5`` (the values as
        they go into the file, as JSON: a text in quotes, control characters escaped)."""
        values = [f"{name}={json.dumps(file_value(config[name]), ensure_ascii=False, default=str)}"
                  for name in self.paths if name in config]
        return f"{self.file_name} with {', '.join(values)}" if values \
            else f"{self.file_name} as it is"



def _flag_name(word: str) -> str | None:
    return word[2:].partition("=")[0] if word.startswith("--") else None


def file_value(value: Any) -> Any:
    """A journaled value as it goes into the file (quotes stripped as on a command line)."""
    return strip_wrapping_quotes(value) if isinstance(value, str) else value


# -- reading and writing the template ----------------------------------------------
@functools.cache
def _representer() -> type:
    """ruamel's round-trip representer, writing a new float as ``1.0e-07`` (YAML 1.1 and 1.2
    read that as a float; the template's own floats keep their spelling)."""
    from ruamel.yaml.representer import RoundTripRepresenter

    class Representer(RoundTripRepresenter):
        def represent_float(self, data: float) -> Any:
            return self.represent_scalar("tag:yaml.org,2002:float", _float_text(data))

    Representer.add_representer(float, Representer.represent_float)
    return Representer


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.Representer = _representer()
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _yaml_value(value: Any) -> Any:
    """A new value for a YAML file: a text PyYAML (YAML 1.1) would misread gets quotes."""
    if isinstance(value, str):
        import yaml
        from ruamel.yaml.scalarstring import SingleQuotedScalarString

        resolved = yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False))
        if resolved != "tag:yaml.org,2002:str" or value != value.strip():
            return SingleQuotedScalarString(value)
        return value
    if isinstance(value, list):
        return [_yaml_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _yaml_value(v) for k, v in value.items()}
    return value


def _float_text(value: float) -> str:
    """``1e-07`` -> ``1.0e-07``, ``nan`` -> ``.nan``: a float in YAML 1.1 and 1.2 alike."""
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def _load(text: str, is_json: bool, where: Path) -> Any:
    """The template's data; a key given twice, nesting too deep or bad syntax is a UsageError
    (:mod:`hpsearch.spec.datafile`, whose checks search files get too)."""
    what = f"config template {where}"
    if is_json:
        return load_json(text, what)
    from ruamel.yaml import YAMLError

    try:
        data = _yaml().load(text)  # refuses a key given twice on its own
    except YAMLError as exc:
        raise yaml_error(exc, what) from None
    except RecursionError:
        raise too_deep(what) from None
    check_nesting(data, what)
    return data


def _dump_yaml(data: Any, template_text: str) -> str:
    mapping, offset = _guess_indent(template_text)
    yaml = _yaml()
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _guess_indent(text: str) -> tuple[int, int]:
    """The template's block indentation: a nested mapping's step (2 when it has none) and a
    list dash's offset under its key (``key:\\n  - a``: 2; ``key:\\n- a``: 0)."""
    mapping: int | None = None
    offset: int | None = None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for parent, line in zip(lines, lines[1:], strict=False):
        if not parent.split(" #")[0].rstrip().endswith(":"):
            continue
        step = (len(line) - len(line.lstrip())) - (len(parent) - len(parent.lstrip()))
        if line.lstrip().startswith("- "):
            offset = step if offset is None and step >= 0 else offset
        elif step > 0 and mapping is None:
            mapping = step
    return mapping or 2, offset or 0


def _dump_json(data: Any, template_text: str) -> str:
    found = re.search(r"\n([ \t]+)\S", template_text)
    indent = found.group(1) if found else None
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


# -- key paths ----------------------------------------------------------------------
def key_path(name: str, data: Mapping[str, Any], allow_new: bool, where: str
             ) -> tuple[Segment, ...] | None:
    """The key path parameter ``name`` sets in ``data``, or None: it stays a flag."""
    top = {str(k) for k in data}
    if ":" in name:
        return _walk(name, name.split(":"), ":", data, allow_new, where)
    dotted = name.split(".") if "." in name and name.split(".")[0] in top else None
    if name in top:
        if dotted is not None and _exists(dotted, data):
            raise UsageError(f"parameter {name!r} is ambiguous in {where}: it is a top-level "
                             f"key and the key path {' -> '.join(dotted)}; write "
                             f"{':'.join(dotted)!r} for the nested key, or rename one")
        return (_key_of(data, name),)
    if dotted is None:
        _refuse_near_miss(name, data, where)
        return None
    return _walk(name, dotted, ".", data, allow_new, where)


def _refuse_near_miss(name: str, data: Mapping[str, Any], where: str) -> None:
    """Refuse a dotted flag name whose first part is a near miss of a top-level key of the
    template (``optm.lr`` for ``optim``): a misspelt key path, which as a flag the script
    would refuse in every run. One line naming the nearest key path."""
    first, dot, rest = name.partition(".")
    if not dot:
        return
    close = difflib.get_close_matches(first, [str(k) for k in data], n=1, cutoff=_NEAR_MISS)
    if not close:
        return
    meant = f"{close[0]}.{rest}"
    under = _key_paths(data[_key_of(data, close[0])], close[0])
    alike = [p for p in under if p.count(".") == meant.count(".")] or under
    nearest = difflib.get_close_matches(meant, alike, n=1, cutoff=0)[0]
    raise UsageError(f"parameter {name!r}: no key {first!r} in {where} (did you mean "
                     f"{nearest!r}?); fix the parameter's name")


def _key_paths(node: Any, prefix: str) -> list[str]:
    """``prefix`` and every key path below it, joined with ``.`` (list items by index)."""
    children: list[tuple[str, Any]] = (
        [(str(k), v) for k, v in node.items()] if isinstance(node, Mapping) else
        [(str(i), v) for i, v in enumerate(node)] if isinstance(node, list) else [])
    return [prefix, *(p for key, child in children for p in _key_paths(child, f"{prefix}.{key}"))]


def _key_of(mapping: Mapping[Any, Any], part: str) -> Any:
    """The key of ``mapping`` spelled ``part`` (YAML keys may be numbers)."""
    return next(k for k in mapping if str(k) == part)


def _exists(parts: list[str], data: Any) -> bool:
    node = data
    for part in parts:
        if isinstance(node, Mapping) and part in {str(k) for k in node}:
            node = node[_key_of(node, part)]
        elif isinstance(node, list) and _INDEX.fullmatch(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _walk(name: str, parts: list[str], sep: str, data: Any, allow_new: bool, where: str
          ) -> tuple[Segment, ...]:
    """Follow ``parts`` through ``data``; a one-line UsageError where the path breaks."""
    if "" in parts:
        raise UsageError(f"parameter {name!r} has an empty key between {sep!r} separators; "
                         f"write it as key{sep}subkey")
    if "=" in name:
        raise UsageError(f"parameter {name!r}: a key path cannot hold '='; rename the key")
    path: list[Segment] = []
    node = data
    for i, part in enumerate(parts):
        here = sep.join(parts[:i]) or "the top level"
        if isinstance(node, Mapping):
            keys = [str(k) for k in node]
            if part in keys:
                key = _key_of(node, part)
                path.append(key)
                node = node[key]
                continue
            if allow_new:
                return (*path, *parts[i:])
            prefix = sep.join(parts[:i] + [""])
            close = difflib.get_close_matches(part, keys, n=3, cutoff=0.5)
            hint = (f"nearest: {', '.join(prefix + c for c in close)}" if close else
                    f"keys there: {', '.join(prefix + k for k in keys[:8]) or 'none'}")
            raise UsageError(f"parameter {name!r}: {where} has no key {part!r} under {here} "
                             f"({hint}); fix the name, or allow new keys (--allow_new_keys)")
        if isinstance(node, list):
            if not _INDEX.fullmatch(part) or int(part) >= len(node):
                raise UsageError(f"parameter {name!r}: {here} in {where} is a list of "
                                 f"{len(node)}; {part!r} is not an index 0..{len(node) - 1}")
            path.append(int(part))
            node = node[int(part)]
            continue
        raise UsageError(f"parameter {name!r}: {here} in {where} is the value {node!r}, not a "
                         f"mapping, so it has no key {part!r}; fix the key path")
    return tuple(path)


def _set(data: Any, path: tuple[Segment, ...], value: Any) -> None:
    """Set ``value`` at ``path`` (missing mapping keys created); a YAML list or mapping that
    replaces one written in flow style (``[3, 94]``) is written in flow style too."""
    node = data
    for segment in path[:-1]:
        if isinstance(node, MutableMapping) and segment not in node:
            node[segment] = {}
        node = node[segment]
    last = path[-1]
    old = node[last] if isinstance(node, list) or last in node else None
    if isinstance(value, (list, dict)) and getattr(old, "fa", None) is not None \
            and old.fa.flow_style():
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        value = CommentedSeq(value) if isinstance(value, list) else CommentedMap(value)
        value.fa.set_flow_style()
    node[last] = value


# -- checking a search's template --------------------------------------------------
def load_config_file(template: Path, arg: str, allow_new_keys: bool,
                     values: Mapping[str, list[Any] | None]) -> ConfigFile:
    """Read and check ``template`` against the search's parameters.

    ``values`` maps every parameter name (conditions' too) to its value list (None for a
    distribution, whose values are numbers). Raises a one-line UsageError.
    """
    where = f"config template {template}"
    if not template.is_file():
        raise UsageError(f"{where} does not exist; pass the path of the model's YAML or JSON "
                         "config (relative to the search file, or to where you start hpsearch "
                         "for --config_template)")
    if template.name in RESERVED_FILES:
        raise UsageError(f"{where}: its name {template.name!r} is one of hpsearch's own files "
                         "in a run directory; rename the template")
    if not arg or "=" in arg or arg.startswith("-"):
        raise UsageError(f"config_arg {arg!r} must be a flag name such as 'config'")
    try:
        text = template.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {where} ({exc}); check that it is UTF-8 text") from None
    data = _load(text, template.suffix.lower() == ".json", template)
    if not isinstance(data, Mapping):
        raise UsageError(f"{where} must hold a mapping of keys at the top, not "
                         f"{type(data).__name__}")
    if arg in values:
        raise UsageError(f"parameter {arg!r} would be passed as --{arg}, which carries the "
                         "patched config file; rename the parameter or set config_arg")
    paths: dict[str, tuple[Segment, ...]] = {}
    for name, choices in values.items():
        path = key_path(name, data, allow_new_keys, where)
        if path is None:
            continue
        for value in choices or ():
            if isinstance(storable(value), str) and not isinstance(value, str):
                raise UsageError(f"parameter {name!r}: the value {value!r} cannot go into "
                                 f"{where} as it is; use a number, text, list or mapping")
        paths[name] = path
    return ConfigFile(template, arg, text, paths, allow_new_keys)
