"""Search files in other tools' formats, told apart by their top-level keys, read as they are.

===============  ==========================================  ===============================
format           top-level keys                              read by
===============  ==========================================  ===============================
hpsearch         script, metrics, parameters, ...            :mod:`hpsearch.spec.searchfile`
hyper_opt        optuna (and log, slurm)                     :mod:`hpsearch.spec.migrate.hyper_opt`
hpogrid project  search_space, hpo_config, model_config      :mod:`hpsearch.spec.migrate.hpogrid`
Auptimizer       proposer, parameter_config                  :mod:`hpsearch.spec.migrate.auptimizer`
===============  ==========================================  ===============================

A foreign file becomes a search file's mapping, which :func:`hpsearch.spec.searchfile.
spec_from_mapping` checks like any search file; the command line's overrides (``--script``,
``--config_template``, ``--config_arg``, ``--allow_new_keys``) replace the mapping's keys.
Backend settings a file carries (hyper_opt's ``slurm:``, hpogrid's ``max_concurrent``) come
back from :func:`suggested_options` as flag values; the command line applies each one only
where its flag was not given (a flag beats the file, the file beats a flag's default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.migrate import auptimizer, hpogrid, hyper_opt
from hpsearch.spec.searchfile import read_search_file, spec_from_mapping


def format_of(data: Any) -> str:
    """``hyper_opt``, ``hpogrid``, ``auptimizer`` or ``hpsearch`` (ours, and anything else:
    its checks say)."""
    if isinstance(data, dict) and "optuna" in data:
        return "hyper_opt"
    if isinstance(data, dict) and any(k in data for k in hpogrid.SECTIONS):
        return "hpogrid"
    if isinstance(data, dict) and any(k in data for k in auptimizer.KEYS):
        return "auptimizer"
    return "hpsearch"


_WORDS = {"hyper_opt": "hyper_opt file", "hpogrid": "hpogrid project file",
          "auptimizer": "Auptimizer file", "hpsearch": "search file"}


def load_search_file(path: Path, run_cwd: Path, check_script: bool = True,
                     overrides: dict[str, Any] | None = None,
                     defaults: dict[str, Any] | None = None) -> SearchSpec:
    """Read a search file of any format with the command line's ``overrides`` applied;
    ``defaults`` fill settings the file leaves out (a served search's ``script`` and
    ``metrics``)."""
    overrides = dict(overrides or {})
    data = read_search_file(path)
    if defaults and isinstance(data, dict):
        data = {**defaults, **data}
    kind = format_of(data)
    where = f"{_WORDS[kind]} {path}"
    notes: list[str] = []
    if kind == "hyper_opt":
        data, notes = hyper_opt.to_mapping(data, where, overrides.get("script"))
    elif kind == "hpogrid":
        data, notes = hpogrid.to_mapping(data, where, overrides.get("script"))
    elif kind == "auptimizer":  # --script names the Auptimizer script its runner runs
        data, notes = auptimizer.to_mapping(data, where, overrides.pop("script", None),
                                            run_cwd, check_script)
    if isinstance(data, dict):
        data = {**data, **overrides}
    spec = spec_from_mapping(data, where, run_cwd, check_script, source_file=path)
    return dataclasses.replace(spec, warnings=[*notes, *spec.warnings])


def suggested_options(path: Path, backend: str, natives: Mapping[str, str]
                      ) -> tuple[dict[str, Any], list[str]]:
    """Flag values the search file at ``path`` carries for ``backend`` (``local``, ``slurm``,
    ``lsf``), e.g. ``{"num_jobs": 20, "slurm_mem": "128G"}``, and notes on what is not used.
    ``natives`` maps the backend's own option names to its flags (``{"mem": "slurm_mem"}``;
    ``*``: the flag for any other option), as its option declarations say."""
    data = read_search_file(path)
    kind = format_of(data)
    where = f"{_WORDS[kind]} {path}"
    if kind == "hyper_opt":
        return hyper_opt.suggested_options(data, backend, where, natives)
    if kind == "hpogrid":
        return hpogrid.suggested_options(data, where)
    if kind == "auptimizer":
        return auptimizer.suggested_options(data, where)
    return {}, []
