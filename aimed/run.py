"""A run: its name, config and folders, and its components built from the config."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import pathlib
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from aimed._io import staged_dir
from aimed.components import AugmentorBase, DataLoaderBase, EvaluatorBase, ModelBuilderBase, PreprocessorBase
from aimed.config import ConfigStruct, load_config
from aimed.errors import ComponentError, ConfigError, StageFailed
from aimed.loading import load_class, source_dir
from aimed.pipeline import MLFLOW_UPLOADS, RUN_CONFIG, RUN_STATE, STAGES, TRAIN_STATE, artifact_path

#: Set to 1 to report a failed quality gate without failing (as ``--no-gate``), e.g. under Snakemake.
NO_GATE_ENV = "AIMED_NO_GATE"


@dataclasses.dataclass
class Publication:
    """A stage's outputs while the stage writes them (see :meth:`RunContext.publishing`).

    ``folder``: the staged folder to write into. ``complete``: set False when the stage's checks
    failed, so that no fingerprint is recorded. ``data_fingerprint``: see
    :func:`aimed.provenance.fingerprint_parts`. ``mlflow_run_id`` and ``metrics``: the MLflow run
    the stage's uploads go to, and summary metrics to log there.
    """

    folder: pathlib.Path
    complete: bool = True
    data_fingerprint: Optional[str] = None
    mlflow_run_id: Optional[str] = None
    metrics: Dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RunContext:
    """Everything a stage needs to know about its run; stages get paths only from here."""

    name: str
    config: ConfigStruct
    config_path: pathlib.Path
    project_dir: pathlib.Path

    @property
    def results_dir(self) -> pathlib.Path:
        return self.project_dir / "results" / self.name

    @property
    def state_dir(self) -> pathlib.Path:
        """The run's working state (:data:`aimed.pipeline.RUN_STATE`)."""
        return self.project_dir / RUN_STATE.format(run=self.name)

    @property
    def train_state_dir(self) -> pathlib.Path:
        """The training's resume state (:data:`aimed.pipeline.TRAIN_STATE`)."""
        return self.project_dir / TRAIN_STATE.format(run=self.name)

    def stage_dir(self, stage: str) -> pathlib.Path:
        """``results/<run>/<subfolder>``, the subfolder named in :data:`aimed.pipeline.STAGES`."""
        return self.results_dir / STAGES[stage].subdir

    def artifact(self, pattern: str, split: Optional[str] = None) -> pathlib.Path:
        """The path of an artifact that :mod:`aimed.pipeline` names (e.g. ``HISTORY``) for this run."""
        return self.project_dir / artifact_path(pattern, self.name, split, self.config.evaluation.report_format
                                                if "{report_format}" in pattern else "csv")

    @property
    def data_dir(self) -> pathlib.Path:
        return (self.project_dir / self.config.data_dir).resolve()

    @property
    def existing_data_dir(self) -> pathlib.Path:
        """``data_dir``, which must be a folder: else :class:`StageFailed`, saying how the example creates it."""
        if not self.data_dir.is_dir():
            raise StageFailed(
                f"{self.config.source}: key 'data_dir' is '{self.config.data_dir}', but {self.data_dir} is not a folder. "
                f"Create the dataset (for the example: snakemake prepare_data) or fix the key."
            )
        return self.data_dir

    def record_fingerprint(self, stage: str, folder: pathlib.Path, split: Optional[str] = None,
                           data_fingerprint: Optional[str] = None) -> dict:
        """Write the stage's ``fingerprint.json`` into ``folder`` (its staged output folder).

        Record it only for a stage that completed: a runner takes a folder with its fingerprint as
        up to date. Snakemake (keep-incomplete) records a failed job's outputs as finished, so
        without the fingerprint, one of each stage's declared outputs, a failed stage (a failed
        quality gate, a dataset with problems) would pass as done on the next ``snakemake``; with
        it missing, the job runs (and fails) again. ``data_fingerprint``: see
        :func:`aimed.provenance.fingerprint_parts`.
        """
        from aimed.provenance import record

        return record(self.config, self.project_dir, stage, folder, split, data_fingerprint=data_fingerprint)

    def mlflow_uploads(self, stage: str, split: Optional[str] = None) -> List[Tuple[List[pathlib.Path], Optional[str]]]:
        """The paths a stage uploads to MLflow, grouped by MLflow folder (:data:`aimed.pipeline.MLFLOW_UPLOADS`)."""
        return [([self.config_path if pattern == RUN_CONFIG else self.artifact(pattern, split) for pattern in patterns],
                 folder) for patterns, folder in MLFLOW_UPLOADS.get(stage, ())]

    @contextlib.contextmanager
    def publishing(self, stage: str, split: Optional[str] = None, tracker: Any = None) -> Iterator[Publication]:
        """How every stage ends, in one order: its files, its fingerprint, the rename, the MLflow upload.

        The stage writes into ``publication.folder``, a staged folder renamed to
        ``results/<run>/<stage>[/<split>]`` when the block ends (nothing is renamed if it raises).
        The fingerprint is recorded last inside it, unless the stage set ``complete`` to False.
        Then :meth:`mlflow_uploads` go to ``tracker`` (training's open run) or to the run
        ``publication.mlflow_run_id``, with ``publication.metrics``.
        """
        from aimed.tracking import run_tracker

        final = self.stage_dir(stage) / split if split else self.stage_dir(stage)
        with staged_dir(final) as folder:
            publication = Publication(folder)
            yield publication
            if publication.complete:
                self.record_fingerprint(stage, folder, split, publication.data_fingerprint)
        if tracker is None:
            tracker = run_tracker(self.config, self.project_dir)
            tracker.attach(publication.mlflow_run_id)
        if publication.metrics:
            tracker.log_metrics(publication.metrics)
        for paths, mlflow_folder in self.mlflow_uploads(stage, split):
            tracker.log_artifacts(paths, mlflow_folder)

    @staticmethod
    def gate_enforced(gate: bool = True) -> bool:
        """Whether a failed ``evaluation.thresholds`` gate fails the stage.

        ``gate``: the caller's choice (``aimed evaluate --no-gate`` passes False). A runner whose
        command lines are fixed, such as the Snakemake workflow (its jobs run ``aimed evaluate``
        without ``--no-gate``), turns the gate off with ``AIMED_NO_GATE=1`` in the environment,
        read at each call.
        """
        return gate and os.environ.get(NO_GATE_ENV) != "1"

    @property
    def source_dir(self) -> pathlib.Path:
        """The run's ``src_code_path``, absolute (it must be a folder)."""
        return source_dir(self.config, self.project_dir)

    def component_class(self, key: str) -> Optional[type]:
        return load_class(self.config, key, self.project_dir)

    @property
    def component_config(self) -> ConfigStruct:
        """The config components are built with: the run's, ``data_dir`` made absolute.

        A v0.2 ``abstractions`` DataLoader reads its folder from ``config.data_dir``, which must
        not depend on the working directory of the stage.
        """
        data = self.config.to_dict()
        data["data_dir"] = str(self.data_dir)
        return ConfigStruct(data, source=self.config.source)

    def _build(self, key: str, *args: Any) -> Any:
        """An instance of the component class of ``key``, built as aimed always builds it: ``Cls(config, ...)``."""
        cls = self.component_class(key)
        if cls is None:
            return None
        if args[1:] and not _takes_data_dir(cls):
            args = args[:1]  # the v0.2 constructor, DataLoader(config): the folder is config.data_dir
        call = f"{cls.__name__}(config{', data_dir' if args[1:] else ''})"
        try:
            return cls(*args)
        except TypeError as exc:
            raise ComponentError(
                f"{self.config.source}: key '{key}' is '{self.config.get(key)}', and building it as {call} raised "
                f"TypeError: {exc}. aimed builds every component this way (config: the run's ConfigStruct"
                f"{'; data_dir: the dataset folder, a pathlib.Path' if args[1:] else ''}). Make {cls.__name__}.__init__ "
                f"accept these arguments and pass them to super().__init__, or leave __init__ out and read "
                f"parameters in _load_params(config)."
            ) from exc

    def data_loader(self) -> DataLoaderBase:
        return self._build("data_loader_class", self.component_config, self.data_dir)

    def augmentor(self) -> Optional[AugmentorBase]:
        return self._build("augmentor_class", self.component_config)

    def preprocessor(self) -> PreprocessorBase:
        return self._build("preprocessor_class", self.component_config)

    def model_builder(self) -> ModelBuilderBase:
        return self._build("model_builder_class", self.component_config)

    def evaluator(self) -> EvaluatorBase:
        return self._build("evaluator_class", self.component_config)


def _takes_data_dir(cls: type) -> bool:
    """Whether a DataLoader's constructor takes ``(config, data_dir)`` (0.1.x) rather than ``(config)`` (v0.2)."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # no signature to read: the documented form
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def resolve_run(run: Union[str, pathlib.Path], project_dir: Union[str, pathlib.Path, None] = None) -> RunContext:
    """Build the context of a run given by name (``runs/<name>/config.yaml``) or by config path."""
    project = pathlib.Path(project_dir or ".").resolve()
    candidate = pathlib.Path(run)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        config_path = candidate if candidate.is_absolute() else project / candidate
        name = config_path.parent.name
    else:
        if not candidate.name or candidate.name != str(run) or str(run).startswith("."):
            raise ConfigError(
                f"'{run}' is not a run name: give a folder name under {project / 'runs'} or the path of a config.yaml."
            )
        config_path = project / "runs" / str(run) / "config.yaml"
        name = str(run)
    if not config_path.is_file():
        runs_dir = project / "runs"
        known = sorted(p.parent.name for p in runs_dir.glob("*/config.yaml")) if runs_dir.is_dir() else []
        raise ConfigError(
            f"no run config at {config_path}. Known runs in {runs_dir}: {', '.join(known) or 'none'}. "
            f"Pass a run name from that list or the path of a config.yaml, and run aimed from the project "
            f"folder or pass --project-dir."
        )
    return RunContext(name=name, config=load_config(config_path), config_path=config_path.resolve(), project_dir=project)
