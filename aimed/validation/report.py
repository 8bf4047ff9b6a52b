"""The validation report of a dataset: per-split summaries and every error found."""

from __future__ import annotations

import pathlib
from typing import Any, Dict

from aimed.components import DataLoaderBase
from aimed.pipeline import SPLITS
from aimed.validation.layout import check_layout, uses_tutorial_layout
from aimed.validation.reading import read_split


def validate(loader: DataLoaderBase, data_dir: pathlib.Path) -> Dict[str, Any]:
    """The validation report of a dataset: per-split summaries and every error found."""
    report: Dict[str, Any] = {"splits": {}, "errors": []}
    # The tutorial's layout is checked when any split uses it: split folders alone (images beside one
    # labels file at the top, say), or a labels.csv with other columns, are another layout, which
    # only the DataLoader knows.
    layout_used = uses_tutorial_layout(data_dir, list(SPLITS))
    for split in SPLITS:
        errors = check_layout(data_dir, split) if layout_used else []
        summary = read_split(loader, split, data_dir)
        errors += [e for e in summary.pop("errors") if e not in errors]
        report["splits"][split] = summary
        report["errors"] += errors
    report["warnings"] = [w for summary in report["splits"].values() for w in summary.get("warnings", [])]
    report["ok"] = not report["errors"]
    return report
