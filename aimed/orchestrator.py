"""One call that runs a run's stages in this process: the notebook entry point, as ``Orchestrator`` was in abstractions.

``Orchestrator("runs/mnist-tf").run()`` runs validate-data, check-preprocessing, train, export
and evaluate (each split the run evaluates) in order, each exactly as ``aimed <stage>`` does:
the same checks first, the same artifacts under ``results/<run>/``, the same resume state. It
does not decide what is up to date (Snakemake and DVC do); it runs what it is asked to.
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Any, Dict, Iterable, Optional, Union

from aimed.errors import ConfigError
from aimed.pipeline import STAGES


class Orchestrator:
    """Run the stages of one run in process and return their results.

    Args:
        run_dir: the run's folder (``runs/<run>``) or its ``config.yaml``.
        project_dir: the project folder; by default the folder holding ``runs/``.

    Example::

        from aimed import Orchestrator
        results = Orchestrator("runs/mnist-tf").run()
        results["evaluate:test"]["classification"]["accuracy"]
    """

    def __init__(self, run_dir: Union[str, pathlib.Path], project_dir: Union[str, pathlib.Path, None] = None) -> None:
        from aimed.run import resolve_run

        path = pathlib.Path(run_dir).resolve()
        config = path if path.suffix in (".yaml", ".yml") else path / "config.yaml"
        project = pathlib.Path(project_dir).resolve() if project_dir else config.parent.parent.parent
        self.context = resolve_run(config, project)

    def run(self, stages: Optional[Iterable[str]] = None, gate: bool = True) -> Dict[str, Any]:
        """Run ``stages`` (default: all, in pipeline order); ``{stage: result}``, evaluate as ``evaluate:<split>``.

        ``"evaluate"`` evaluates every split the run evaluates; ``"evaluate:test"`` one split, with
        the same name as its result. A stage that fails raises its error (:class:`aimed.StageFailed`,
        :class:`aimed.ConfigError`, or the error of your code) and the later stages do not run.
        """
        from aimed._tensorflow import import_tensorflow
        from aimed.preflight import check_run

        splits = list(self.context.config.evaluation.splits)
        jobs = [*(s for s in STAGES if s != "evaluate"), *(f"evaluate:{split}" for split in splits)]
        wanted = set(jobs if stages is None else stages)
        if "evaluate" in wanted:
            wanted |= {f"evaluate:{split}" for split in splits}
        unknown = sorted(wanted - set(jobs) - {"evaluate"})
        if unknown:
            raise ConfigError(f"unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGES)}, and "
                              f"evaluate:<split> for the splits this run evaluates ({', '.join(splits)}).")
        import_tensorflow()
        check_run(self.context)
        results: Dict[str, Any] = {}
        for job in (j for j in jobs if j in wanted):  # pipeline order, whatever order was asked
            name, _, split = job.partition(":")
            run = importlib.import_module(STAGES[name].module).run
            results[job] = run(self.context, split=split, gate=gate) if split else run(self.context)
        return results
