"""The runners that execute the pipeline of :mod:`aimed.pipeline`: Snakemake and DVC.

:mod:`aimed.runners.snakemake` is the glue of the Snakemake workflow (``workflow/rules/common.smk``
calls it), :mod:`aimed.runners.dvc` renders ``dvc.yaml`` and records built stages in ``dvc.lock``.
This module holds what both read: run configs and the jobs of a set of runs.
"""

from __future__ import annotations

import pathlib
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

import yaml

from aimed.config import run_schema
from aimed.pipeline import jobs, run_splits

#: Where a project keeps its runs: ``runs/<run>/config.yaml``.
RUNS_DIR = "runs"

#: libyaml's parser when PyYAML has it: the pure-Python one takes about 2 ms per run config, at every invocation.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def run_config_path(project_dir: pathlib.Path, run: str) -> pathlib.Path:
    """``runs/<run>/config.yaml`` under ``project_dir`` (relative when ``project_dir`` is)."""
    return pathlib.Path(project_dir) / RUNS_DIR / run / "config.yaml"


def read_raw_run_config(path: pathlib.Path) -> Dict[str, Any]:
    """A run config as YAML gives it, not validated (aimed validates it when a stage runs).

    Raises OSError or yaml.YAMLError when it cannot be read, and TypeError when it is not a mapping.
    """
    data = yaml.load(pathlib.Path(path).read_text(), Loader=_YAML_LOADER) or {}
    if not isinstance(data, dict):
        raise TypeError(f"run config {path} is a {type(data).__name__}, not a mapping of keys")
    return data


def run_default(key: str) -> Any:
    """The default of a top-level run config key (``aimed/schemas/run.schema.yaml``)."""
    return run_schema()["properties"][key]["default"]


def run_jobs(run_configs: Mapping[str, Mapping[str, Any]],
             all_splits: bool = False) -> Iterator[Tuple[str, str, Optional[str]]]:
    """``(run, stage, split)`` of every job of the runs, in pipeline order.

    ``run_configs``: each run's raw config. A run evaluates the splits of its ``evaluation.splits``
    (:func:`aimed.pipeline.run_splits`); ``all_splits`` lists every split's evaluation instead.
    """
    for run, config in run_configs.items():
        for stage, split in jobs(None if all_splits else tuple(run_splits(config))):
            yield run, stage, split
