"""check-preprocessing: pull batches through augmentor and preprocessor and check them against the model.

For the training and validation splits it checks that x, y and weight batches have shapes and
dtypes the compiled model accepts, that every value is finite, that ``n_iter`` batches of
``batch_size`` cover the ``n`` points exactly once, and that one ``test_on_batch`` runs.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from aimed._io import atomic_write_json, staged_dir
from aimed._plots import save_image_grid
from aimed.data import batched_split, split_batch, take
from aimed.errors import StageFailed
from aimed.run import RunContext

BATCHES_CHECKED = 3
SAMPLES_SHOWN = 16


def _shape(value: Any) -> List[Any]:
    return list(np.shape(value))


def _model_signature(model: Any) -> Dict[str, Any]:
    return {
        "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in model.inputs],
        "outputs": [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in model.outputs],
    }


def _fits(actual: List[Any], expected: List[Any]) -> bool:
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def check_batches(split: str, batches: Any, n: int, n_iter: int, batch_size: int,
                  model: Any) -> Tuple[Dict[str, Any], Optional[tuple]]:
    """Check the first batches of a split against the model; return the split's report and its first ``(x, y)``.

    The first batch is kept for the sample grid: pulling it again would fill a loader's shuffle
    buffer (often the whole split, decoded) a second time.
    """
    problems: List[str] = []
    expected_iter = math.ceil(n / batch_size)
    if n_iter != expected_iter:
        problems.append(
            f"{split}: batchify returned n_iter={n_iter}, but n={n} points in batches of {batch_size} need {expected_iter}"
        )
    input_shape = list(model.inputs[0].shape)
    output_shape = list(model.outputs[0].shape)
    seen = []
    first = None
    for index, batch in enumerate(take(batches, min(BATCHES_CHECKED, n_iter))):
        x, y, w = split_batch(batch)
        if first is None:
            first = (x, y)
        where = f"{split} batch {index}"
        size = len(x)
        if not 0 < size <= batch_size:
            problems.append(f"{where}: has {size} rows, expected 1 to batch_size={batch_size}")
        if not _fits(_shape(x), input_shape):
            problems.append(f"{where}: x has shape {_shape(x)}, the model input expects {input_shape}")
        numeric = np.issubdtype(np.asarray(x).dtype, np.number)
        if not numeric:
            problems.append(f"{where}: x has dtype {np.asarray(x).dtype}, not numeric")
        elif not np.all(np.isfinite(x)):
            problems.append(f"{where}: x has NaN or inf values")
        y_shape = _shape(y)
        if len(y) != size:
            problems.append(f"{where}: y has {len(y)} rows but x has {size}")
        if not (_fits(y_shape, output_shape) or _fits(y_shape + [output_shape[-1]], output_shape)
                or _fits(y_shape, output_shape[:-1] + [1])):
            problems.append(
                f"{where}: y has shape {y_shape}; the model output is {output_shape}, so y must be "
                f"{output_shape} (dense) or {output_shape[:-1]} (sparse class indices)"
            )
        if w is not None:
            if _shape(w) != [size]:
                problems.append(f"{where}: weight has shape {_shape(w)}, expected [{size}]")
            elif not np.all(np.isfinite(np.asarray(w, dtype=np.float64))):
                problems.append(f"{where}: weight has NaN or inf values")
        if not problems:
            try:
                model.test_on_batch(x, y, sample_weight=w)
            except Exception as exc:  # Keras raises many error types for shape mismatches
                problems.append(f"{where}: the compiled model cannot evaluate it: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        seen.append({"x": {"shape": _shape(x), "dtype": str(np.asarray(x).dtype),
                           "min": float(np.min(x)) if numeric and np.size(x) else None,
                           "max": float(np.max(x)) if numeric and np.size(x) else None},
                     "y": {"shape": y_shape, "dtype": str(np.asarray(y).dtype)},
                     "weight": None if w is None else {"shape": _shape(w), "dtype": str(np.asarray(w).dtype)}})
    return {"n": n, "n_iter": n_iter, "batches": seen, "problems": problems}, first


def _sample_images(batch: Optional[tuple]) -> tuple:
    images, titles = [], []
    if batch is not None:
        x, y = batch
        for xi, yi in list(zip(x, y))[:SAMPLES_SHOWN]:
            images.append(xi)
            titles.append(f"y={np.asarray(yi).tolist() if np.size(yi) <= 3 else np.argmax(yi)}")
    return images, titles


def run(ctx: RunContext) -> Dict[str, Any]:
    """Check both training splits; write ``report.json`` and ``samples.png``; fail on any problem."""
    config = ctx.config
    model = ctx.model_builder().get_compiled_model()
    loader, augmentor, preprocessor = ctx.data_loader(), ctx.augmentor(), ctx.preprocessor()
    report: Dict[str, Any] = {"model": _model_signature(model), "batch_size": config.batch_size, "splits": {}}
    first_batches = {}
    for split in ("train", "validation"):
        batches, n, n_iter = batched_split(loader, augmentor, preprocessor, split)
        report["splits"][split], first_batches[split] = check_batches(split, batches, n, n_iter, config.batch_size,
                                                                      model)
    problems = [p for s in report["splits"].values() for p in s["problems"]]
    report["ok"] = not problems
    with staged_dir(ctx.stage_dir("check-preprocessing")) as out:
        atomic_write_json(out / "report.json", report)
        # Snakemake (keep-incomplete) records a failed job's outputs as finished; without the
        # fingerprint, one of the declared outputs, the next run checks again instead of training.
        if not problems:
            ctx.record_fingerprint("check-preprocessing", out)
        images, titles = _sample_images(first_batches["train"])
        save_image_grid(out / "samples.png", images, titles, config.input_height, config.input_width)
    if problems:
        raise StageFailed(
            f"preprocessing of run '{ctx.name}' does not fit the model built by {config.model_builder_class}: "
            + "; ".join(problems)
            + f". Fix {config.preprocessor_class} or the model; the report is "
            f"{ctx.stage_dir('check-preprocessing') / 'report.json'}."
        )
    return report
