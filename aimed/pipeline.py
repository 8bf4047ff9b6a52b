"""The pipeline graph, the one source of truth for the Snakemake rules, ``dvc.yaml`` and the CLI.

It names the stages (their CLI commands, stage modules, help texts, result folders), the
dataset's splits and the evaluated ones, the artifacts other modules open (``HISTORY``,
``REPORT``, ...), and the jobs of a run (:func:`jobs`). The runners (:mod:`aimed.runners`) and
the stages read these names from here.

Paths are patterns relative to the project folder, with ``{run}`` and, for evaluation, ``{split}``.
Each stage also says what its fingerprint covers: the config keys it reads (dotted keys name a
sub-key; ``"*"`` means every key but ``config_exclude``), the components whose code it runs,
and whether it reads the dataset itself.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

#: The dataset's splits, in order (``<data_dir>/<split>/``).
SPLITS = ("train", "validation", "test")

#: The splits that evaluate can evaluate (``aimed evaluate --split``); a run's ``evaluation.splits`` picks among them.
EVAL_SPLITS = ("validation", "test")

#: The split whose report DVC plots as a confusion matrix.
CONFUSION_PLOT_SPLIT = "test"

#: Formats of the per-datapoint report (``evaluation.report_format``); the first is the default.
REPORT_FORMATS = ("csv", "parquet")

#: Artifacts that other modules open by name, as path patterns (``{report_format}``: see :func:`stage_outputs`).
HISTORY = "results/{run}/train/history.csv"
TRAIN_SUMMARY = "results/{run}/train/summary.json"
BEST_MODEL = "results/{run}/train/best_model.keras"
DATA_REPORT = "results/{run}/validate_data/report.json"
PREPROCESSING_REPORT = "results/{run}/check_preprocessing/report.json"
EXPORTED_MODEL = "results/{run}/export/model.keras"
EXPORTED_CONFIG = "results/{run}/export/config.yaml"
EXPORTED_CARD = "results/{run}/export/model_card.json"
SAVEDMODEL = "results/{run}/export/savedmodel"
EVAL_SUMMARY = "results/{run}/evaluate/{split}/summary.json"
REPORT = "results/{run}/evaluate/{split}/report.{report_format}"

EVALUATION = "results/{run}/evaluate/{split}"
#: The run's own config file, wherever it lives (``runs/<run>/config.yaml`` or a path given to the CLI).
RUN_CONFIG = "{run_config}"

#: What each stage uploads to the run's MLflow run: groups of (artifact patterns, MLflow folder).
#: Stage endings (:meth:`aimed.run.RunContext.publishing`) and ``aimed sync-mlflow`` upload these.
#: The SavedModel goes up as a plain folder rather than through ``mlflow.keras.log_model``, which
#: would re-serialise the model and infer pip requirements over the network.
MLFLOW_UPLOADS: Dict[str, Tuple[Tuple[Tuple[str, ...], Optional[str]], ...]] = {
    "train": (((HISTORY, RUN_CONFIG), None),),
    "export": (((EXPORTED_CARD, EXPORTED_CONFIG), None), ((SAVEDMODEL,), "model")),
    "evaluate": (((EVALUATION,), "evaluation"),),
}

#: Where a run's stages write: ``results/<run>/<stage subfolder>/``.
RUN_RESULTS = "results/{run}"

#: A run's working state: the training lock, TensorBoard logs, archived trainings, a disk cache.
#: Outside ``results/``, so that Snakemake's cleanup of a failed job never removes it.
RUN_STATE = "state/{run}"
#: The training's resume state (``state.json``, the weights it names, the commit before). DVC
#: keeps it as a persisted output of the train stage, so a clone that pulls continues a training.
TRAIN_STATE = "state/{run}/train"


@dataclasses.dataclass(frozen=True)
class Stage:
    """One pipeline stage: its CLI command, upstream stages, outputs and fingerprint coverage."""

    name: str
    command: str
    module: str
    help: str
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

    @property
    def subdir(self) -> str:
        """The stage's subfolder of ``results/<run>/`` (evaluate: the parent of the split folders)."""
        return self.folder[len(RUN_RESULTS) + 1:].split("/", 1)[0]

    @property
    def per_split(self) -> bool:
        """Whether the stage runs once per evaluation split (its command takes ``{split}``)."""
        return "{split}" in self.command


STAGES: Dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            name="validate-data",
            command="aimed validate-data {run}",
            module="aimed.stages.validate_data",
            help="Read every split through the DataLoader and report bad files and rows.",
            upstream=(),
            outputs=(DATA_REPORT, "results/{run}/validate_data/manifest.json",
                     "results/{run}/validate_data/fingerprint.json"),
            config_keys=("src_code_path", "data_dir", "data_loader_class", "data_loader", "input_height", "input_width"),
            components=("data_loader_class",),
            reads_data=True,
        ),
        Stage(
            name="check-preprocessing",
            command="aimed check-preprocessing {run}",
            module="aimed.stages.check_preprocessing",
            help="Check preprocessed batches against the compiled model.",
            upstream=("validate-data",),
            outputs=(PREPROCESSING_REPORT,
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
            help="Train the model, resuming from the run's checkpoint if there is one.",
            upstream=("check-preprocessing",),
            outputs=(
                HISTORY,
                TRAIN_SUMMARY,
                BEST_MODEL,
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
            help="Export the best epoch as a SavedModel and a .keras file.",
            upstream=("train", "validate-data"),
            outputs=(
                EXPORTED_MODEL,
                EXPORTED_CONFIG,
                EXPORTED_CARD,
                "results/{run}/export/fingerprint.json",
            ),
            config_keys=("export", "model_details", "model_parameters", "considerations"),
            components=("model_builder_class",),
            directories=(SAVEDMODEL,),
        ),
        Stage(
            name="evaluate",
            command="aimed evaluate {run} --split {split}",
            module="aimed.stages.evaluate",
            help="Evaluate a split; write the per-datapoint report and a summary.",
            upstream=("export",),
            outputs=(EVAL_SUMMARY,
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


def file_name(pattern: str) -> str:
    """The file name of an artifact's path pattern (``HISTORY``: ``history.csv``)."""
    return pattern.rsplit("/", 1)[1]


def artifact_path(pattern: str, run: str, split: Optional[str] = None, report_format: str = REPORT_FORMATS[0]) -> str:
    """An artifact's path relative to the project folder, for one run (and split)."""
    return with_report_format(pattern, report_format).format(run=run, split=split)


def prepare_data_deps(dataset: Mapping[str, Any]) -> List[str]:
    """What a dataset's prepare_data step reads: its ``script``, and the ``sample`` it converts if it has one."""
    script = str(dataset["script"])
    return [script] + ([str(dataset["sample"])] if dataset.get("sample") else [])


def prepare_data_command(dataset: Mapping[str, Any]) -> str:
    """The command of a dataset's prepare_data step (one ``datasets.<name>`` entry of the workflow config).

    The script gets ``--sample`` (when the dataset has one), ``--out`` and any ``--limit-<split>``.
    """
    script, *sample = prepare_data_deps(dataset)
    args = ["python", script, *(["--sample", sample[0]] if sample else []), "--out", str(dataset["path"])]
    for split in SPLITS:
        if dataset.get(f"limit_{split}") is not None:
            args += [f"--limit-{split}", str(dataset[f"limit_{split}"])]
    # Snakemake and DVC run it through a shell: every value is quoted, so a path with a space (or
    # a ';') is one argument and never a second command.
    return shlex.join(args)


def _evaluation(run_config: Mapping[str, Any]) -> Mapping[str, Any]:
    return run_config.get("evaluation") or {}


def run_splits(run_config: Mapping[str, Any]) -> List[str]:
    """The splits a run evaluates (its raw config's ``evaluation.splits``; by default every one), in EVAL_SPLITS order."""
    splits = _evaluation(run_config).get("splits") or EVAL_SPLITS
    return [s for s in EVAL_SPLITS if s in splits]


def run_report_format(run_config: Mapping[str, Any]) -> str:
    """A run's ``evaluation.report_format`` (raw config; by default the first of REPORT_FORMATS)."""
    return _evaluation(run_config).get("report_format") or REPORT_FORMATS[0]


def jobs(splits: Optional[Tuple[str, ...]] = None) -> Iterator[Tuple[str, Optional[str]]]:
    """A run's jobs in pipeline order: ``(stage, split)``, split None for the stages that run once.

    ``splits``: the evaluation splits (a run's :func:`run_splits`); by default every one of EVAL_SPLITS.
    """
    for name, stage in STAGES.items():
        for split in (EVAL_SPLITS if splits is None else splits) if stage.per_split else (None,):
            yield name, split


def fingerprint_file(run: str, stage: str, split: str = "") -> str:
    """Where ``aimed fingerprint`` writes a stage's fingerprint for DVC to hash as a dependency."""
    suffix = f"_{split}" if split else ""
    return f"results/{run}/fingerprints/{STAGES[stage].rule}{suffix}.json"
