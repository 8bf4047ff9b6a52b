"""The pipeline graph, the one source of truth for the Snakemake rules and ``dvc.yaml``.

Paths are patterns relative to the project folder, with ``{run}`` and, for evaluation, ``{split}``.
Each stage also says what its fingerprint covers: the config keys it reads (dotted keys name a
sub-key; ``"*"`` means every key but ``config_exclude``), the components whose code it runs,
and whether it reads the dataset itself.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Dict, List, Tuple

EVAL_SPLITS = ("validation", "test")

#: Formats of the per-datapoint report (``evaluation.report_format``); the first is the default.
REPORT_FORMATS = ("csv", "parquet")

#: Artifacts that other modules open by name, as path patterns (``{report_format}``: see :func:`stage_outputs`).
HISTORY = "results/{run}/train/history.csv"
REPORT = "results/{run}/evaluate/{split}/report.{report_format}"


@dataclasses.dataclass(frozen=True)
class Stage:
    """One pipeline stage: its CLI command, upstream stages, outputs and fingerprint coverage."""

    name: str
    command: str
    module: str
    upstream: Tuple[str, ...]
    outputs: Tuple[str, ...]
    config_keys: Tuple[str, ...]
    components: Tuple[str, ...]
    config_exclude: Tuple[str, ...] = ()
    reads_data: bool = False
    directories: Tuple[str, ...] = ()
    reports: Tuple[str, ...] = ()
    split_keys: Dict[str, Tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def rule(self) -> str:
        """The Snakemake rule name (and DVC stage name)."""
        return self.name.replace("-", "_")

    @property
    def folder(self) -> str:
        """The stage's output folder, holding ``fingerprint.json``."""
        return self.outputs[0].rsplit("/", 1)[0]


STAGES: Dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            name="validate-data",
            command="aimed validate-data {run}",
            module="aimed.stages.validate_data",
            upstream=(),
            outputs=("results/{run}/validate_data/report.json", "results/{run}/validate_data/manifest.json",
                     "results/{run}/validate_data/fingerprint.json"),
            config_keys=("src_code_path", "data_dir", "data_loader_class", "data_loader", "input_height", "input_width"),
            components=("data_loader_class",),
            reads_data=True,
        ),
        Stage(
            name="check-preprocessing",
            command="aimed check-preprocessing {run}",
            module="aimed.stages.check_preprocessing",
            upstream=("validate-data",),
            outputs=("results/{run}/check_preprocessing/report.json",
                     "results/{run}/check_preprocessing/fingerprint.json"),
            config_keys=("augmentor_class", "augmentor", "do_train_augmentation", "do_validation_augmentation",
                         "preprocessor_class", "preprocessor", "batch_size", "model_builder_class", "model_builder"),
            # The model is built to check the batches against it.
            components=("augmentor_class", "preprocessor_class", "model_builder_class"),
            reports=("results/{run}/check_preprocessing/samples.png",),
        ),
        Stage(
            name="train",
            command="aimed train {run}",
            module="aimed.stages.train",
            upstream=("check-preprocessing",),
            outputs=(
                HISTORY,
                "results/{run}/train/summary.json",
                "results/{run}/train/best_model.keras",
                "results/{run}/train/fingerprint.json",
            ),
            reports=("results/{run}/train/curves.png",),
            config_keys=("*",),
            config_exclude=("evaluation", "evaluator_class", "evaluator", "mlflow", "training", "project_name", "cache",
                            "model_details", "model_parameters", "considerations"),
            components=("data_loader_class", "augmentor_class", "preprocessor_class", "model_builder_class"),
        ),
        Stage(
            name="export",
            command="aimed export {run}",
            module="aimed.stages.export",
            upstream=("train", "validate-data"),
            outputs=(
                "results/{run}/export/model.keras",
                "results/{run}/export/config.yaml",
                "results/{run}/export/model_card.json",
                "results/{run}/export/fingerprint.json",
            ),
            config_keys=("export", "model_details", "model_parameters", "considerations"),
            components=("model_builder_class",),
            directories=("results/{run}/export/savedmodel",),
        ),
        Stage(
            name="evaluate",
            command="aimed evaluate {run} --split {split}",
            module="aimed.stages.evaluate",
            upstream=("export",),
            outputs=("results/{run}/evaluate/{split}/summary.json",
                     REPORT,
                     "results/{run}/evaluate/{split}/model_card.json",
                     "results/{run}/evaluate/{split}/confusion_matrix.json",
                     "results/{run}/evaluate/{split}/fingerprint.json"),
            config_keys=("evaluator_class", "evaluator", "evaluation.splits", "evaluation.slice_by",
                         "evaluation.report_format", "evaluation.worst_k", "evaluation.worst_by",
                         "evaluation.worst_direction"),
            components=("data_loader_class", "preprocessor_class", "evaluator_class"),
            reports=("results/{run}/evaluate/{split}/plots/confusion_matrix.png",
                     "results/{run}/evaluate/{split}/plots/worst.png"),
            split_keys={"validation": ("evaluation.thresholds",)},
        ),
    )
}


def with_report_format(pattern: str, report_format: str = REPORT_FORMATS[0]) -> str:
    """A path pattern with the report format filled in, its wildcards left as they are."""
    if report_format not in REPORT_FORMATS:
        raise ValueError(f"report format '{report_format}' is not one of {', '.join(REPORT_FORMATS)}")
    return pattern.replace("{report_format}", report_format)


def stage_outputs(stage: str, report_format: str = REPORT_FORMATS[0], **wildcards: str) -> Tuple[str, ...]:
    """Every output path of a stage (files, folders and report files), formatted if wildcards given.

    ``report_format`` is the run's ``evaluation.report_format``, which names the evaluation report.
    """
    s = STAGES[stage]
    paths = tuple(with_report_format(p, report_format) for p in s.outputs + s.directories + s.reports)
    return tuple(p.format(**wildcards) for p in paths) if wildcards else paths


def report_file_name(report_format: str) -> str:
    """The evaluation report's file name in its split folder: ``report.csv`` or ``report.parquet``."""
    return with_report_format(REPORT, report_format).rsplit("/", 1)[1]


#: The example's script of the prepare_data step (the default of ``datasets.mnist.script``).
PREPARE_DATA_SCRIPT = "workflow/scripts/prepare_mnist.py"


def prepare_data_deps(dataset: Dict[str, object]) -> List[str]:
    """What the prepare_data step reads: its script, and the sample it converts if it has one."""
    script = str(dataset.get("script") or PREPARE_DATA_SCRIPT)
    return [script] + ([str(dataset["sample"])] if dataset.get("sample") else [])


def prepare_data_command(dataset: Dict[str, object]) -> str:
    """The command of the prepare_data step, from ``datasets.mnist`` of the workflow config.

    The script gets ``--sample`` (when the dataset has one), ``--out`` and any ``--limit-<split>``.
    """
    script, *sample = prepare_data_deps(dataset)
    args = ["python", script, *(["--sample", sample[0]] if sample else []), "--out", str(dataset["path"])]
    for split in ("train", "validation", "test"):
        if dataset.get(f"limit_{split}") is not None:
            args += [f"--limit-{split}", str(dataset[f"limit_{split}"])]
    # Snakemake and DVC run it through a shell: every value is quoted, so a path with a space (or
    # a ';') is one argument and never a second command.
    return shlex.join(args)


def fingerprint_file(run: str, stage: str, split: str = "") -> str:
    """Where ``aimed fingerprint`` writes a stage's fingerprint for DVC to hash as a dependency."""
    suffix = f"_{split}" if split else ""
    return f"results/{run}/fingerprints/{STAGES[stage].rule}{suffix}.json"
