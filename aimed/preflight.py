"""What every stage checks before it does any work, so a bad run config fails in seconds, not after training.

Every component class of the run is resolved (module, class, base), whichever stage runs: an
unknown evaluator module stops validate-data, not the evaluation after a whole training. The
evaluation keys that name things of the user's code (``evaluation.slice_by``,
``evaluation.worst_by``) are checked against the evaluator's functions and the DataLoader's
metadata columns. Failures are :class:`~aimed.errors.ConfigError` (exit 2), raised before any
output or state folder is written.
"""

from __future__ import annotations

from typing import List

from aimed.errors import ConfigError
from aimed.loading import check_components
from aimed.run import RunContext

#: Report columns that every evaluation may have, besides the eval functions and metadata.
REPORT_COLUMNS = ("data_id", "row", "y_true", "y_pred", "pred_class", "confidence")


def check_run(ctx: RunContext) -> None:
    """Resolve every component class of the run and check the evaluation keys; raise ``ConfigError``."""
    check_components(ctx.config, ctx.project_dir)
    check_evaluation_keys(ctx)


def check_evaluation_keys(ctx: RunContext) -> None:
    """``evaluation.worst_by`` names an eval function; each ``evaluation.slice_by`` column exists in every report."""
    from aimed.evaluation.funcs import eval_functions

    evaluation = ctx.config.evaluation
    slice_by: List[str] = list(evaluation.slice_by)
    if not slice_by and not evaluation.worst_by:
        return
    evaluator = ctx.evaluator()
    funcs = list(eval_functions(evaluator))
    where = f"{ctx.config.source}: key 'evaluation"
    if evaluation.worst_by and evaluation.worst_by not in funcs:
        raise ConfigError(
            f"{where}.worst_by' is '{evaluation.worst_by}', which is not an eval function of "
            f"{ctx.config.evaluator_class} (get_eval_funcs() gives {', '.join(funcs)}). Set it to one of those."
        )
    if not slice_by:
        return
    loader = ctx.data_loader()
    for split in evaluation.splits:
        metadata = loader.get_metadata(split)
        metadata_columns = [str(c) for c in metadata.columns] if metadata is not None else []
        known = [*REPORT_COLUMNS, *funcs, *metadata_columns]
        missing = [column for column in slice_by if column not in known]
        if missing:
            source = (f"get_metadata('{split}') of {ctx.config.data_loader_class} returns the columns "
                      f"{', '.join(metadata_columns)}" if metadata is not None
                      else f"get_metadata('{split}') of {ctx.config.data_loader_class} returns None (no metadata columns)")
            raise ConfigError(
                f"{where}.slice_by' names {', '.join(repr(c) for c in missing)}, which will not be a column of the "
                f"{split} report: {source}; the report's own columns are {', '.join(REPORT_COLUMNS)} and the eval "
                f"functions {', '.join(funcs)}. Fix the key, or return that column from get_metadata."
            )
