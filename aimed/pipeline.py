"""The pipeline graph, the one source of truth for the Snakemake rules and ``dvc.yaml``.

Paths are patterns relative to the project folder, with ``{run}`` and, for evaluation, ``{split}``.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

EVAL_SPLITS = ("validation", "test")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One pipeline stage: its CLI command, upstream stages and outputs."""

    name: str
    command: str
    upstream: Tuple[str, ...]
    outputs: Tuple[str, ...]
    directories: Tuple[str, ...] = ()
    reports: Tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        """The Snakemake rule name (and DVC stage name)."""
        return self.name.replace("-", "_")


STAGES: Dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            name="validate-data",
            command="aimed validate-data {run}",
            upstream=(),
            outputs=("results/{run}/validate_data/report.json", "results/{run}/validate_data/manifest.json"),
        ),
        Stage(
            name="check-preprocessing",
            command="aimed check-preprocessing {run}",
            upstream=("validate-data",),
            outputs=("results/{run}/check_preprocessing/report.json",),
            reports=("results/{run}/check_preprocessing/samples.png",),
        ),
        Stage(
            name="train",
            command="aimed train {run}",
            upstream=("check-preprocessing",),
            outputs=(
                "results/{run}/train/history.csv",
                "results/{run}/train/summary.json",
                "results/{run}/train/best_model.keras",
            ),
        ),
        Stage(
            name="export",
            command="aimed export {run}",
            upstream=("train", "validate-data"),
            outputs=(
                "results/{run}/export/model.keras",
                "results/{run}/export/config.yaml",
                "results/{run}/export/model_card.json",
            ),
            directories=("results/{run}/export/savedmodel",),
        ),
        Stage(
            name="evaluate",
            command="aimed evaluate {run} --split {split}",
            upstream=("export",),
            outputs=("results/{run}/evaluate/{split}/report.csv", "results/{run}/evaluate/{split}/summary.json"),
        ),
    )
}


def stage_outputs(stage: str, **wildcards: str) -> Tuple[str, ...]:
    """Every output path of a stage (files, folders and report files), formatted if wildcards given."""
    s = STAGES[stage]
    paths = s.outputs + s.directories + s.reports
    return tuple(p.format(**wildcards) for p in paths) if wildcards else paths
