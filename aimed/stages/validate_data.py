"""validate-data: read every split through the run's DataLoader and report every problem.

The engine is :mod:`aimed.validation`: the layout check of each split's ``labels.csv`` and a read
of exactly ``n`` points per split, in one report. The sha256 manifest of the dataset is computed
in a thread meanwhile: a batched read spends its time in TensorFlow's own threads, outside the
GIL, which leaves the GIL to the hashing.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Dict

from aimed._io import atomic_write_json
from aimed.errors import StageFailed
from aimed.fingerprint import folder_manifest, hash_cache
from aimed.run import RunContext
from aimed.validation.report import validate


def run(ctx: RunContext) -> Dict[str, Any]:
    """Validate the run's dataset; write ``report.json`` and ``manifest.json``; fail on any error."""
    data_dir = ctx.existing_data_dir
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        manifest_job = pool.submit(folder_manifest, data_dir, hash_cache(ctx.project_dir))
        report = validate(ctx.data_loader(), data_dir)
        manifest = manifest_job.result()
    report["data_fingerprint"] = manifest["fingerprint"]
    with ctx.publishing("validate-data") as published:
        atomic_write_json(published.folder / "report.json", report)
        atomic_write_json(published.folder / "manifest.json", manifest)
        # Only a passing validation is a completed stage (see RunContext.record_fingerprint); a
        # failed one's report is kept for reading.
        published.complete = report["ok"]
        published.data_fingerprint = manifest["fingerprint"]
    if not report["ok"]:
        listed = "; ".join(report["errors"][:50])
        more = f" (and {len(report['errors']) - 50} more)" if len(report["errors"]) > 50 else ""
        raise StageFailed(
            f"dataset {data_dir} of run '{ctx.name}' has {len(report['errors'])} problem(s): {listed}{more}. "
            f"Fix the files or rows named above; the full report is {ctx.stage_dir('validate-data') / 'report.json'}."
        )
    return report
