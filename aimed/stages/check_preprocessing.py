"""check-preprocessing: pull batches through augmentor and preprocessor and check them against the model.

The engine is :mod:`aimed.preprocessing_check`; this stage builds the run's components, refuses
a dataset that validate-data has not passed, and publishes ``report.json`` and ``samples.png``.
"""

from __future__ import annotations

from typing import Any, Dict

from aimed._io import atomic_write_json
from aimed._plots import save_image_grid
from aimed.errors import StageFailed
from aimed.pipeline import DATA_REPORT
from aimed.preprocessing_check.batches import check_splits
from aimed.preprocessing_check.samples import sample_images
from aimed.run import RunContext


def require_validated_data(ctx: RunContext) -> None:
    """Refuse to check batches of a dataset that validate-data has not passed (it records a fingerprint only then)."""
    from aimed.provenance import FINGERPRINT_FILE

    folder = ctx.stage_dir("validate-data")
    if (folder / FINGERPRINT_FILE).is_file():
        return
    report = ctx.artifact(DATA_REPORT)
    state = (f"failed (its report {report} lists the problems)" if report.is_file()
             else "not run for this run")
    raise StageFailed(
        f"validate-data has {state}, so the preprocessing of run '{ctx.name}' is not checked on that data. "
        f"Run `aimed validate-data {ctx.name}` until it passes, then check the preprocessing."
    )


def run(ctx: RunContext) -> Dict[str, Any]:
    """Check every split; write ``report.json`` and ``samples.png``; fail on any problem."""
    require_validated_data(ctx)
    config = ctx.config
    model = ctx.model_builder().get_compiled_model()
    loader, augmentor, preprocessor = ctx.data_loader(), ctx.augmentor(), ctx.preprocessor()
    result = check_splits(model, loader, augmentor, preprocessor, config, ctx.data_dir)
    with ctx.publishing("check-preprocessing") as published:
        atomic_write_json(published.folder / "report.json", result.report)
        images, titles = sample_images(result.first_batches["train"])
        save_image_grid(published.folder / "samples.png", images, titles, config.input_height, config.input_width)
        # A check with problems is not a completed stage (see RunContext.record_fingerprint).
        published.complete = not result.problems
    if result.problems:
        raise StageFailed(
            f"preprocessing of run '{ctx.name}' does not fit the model built by {config.model_builder_class}: "
            + "; ".join(result.problems)
            + f". Fix {config.preprocessor_class} or the model; the report is "
            f"{ctx.stage_dir('check-preprocessing') / 'report.json'}."
        )
    return result.report
