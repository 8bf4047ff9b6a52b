"""One source for artifact names: the Snakemake rules and dvc.yaml declare what aimed.pipeline names."""

from __future__ import annotations

import re

import pytest
from conftest import REPO_ROOT

import aimed.pipeline as pipeline
from aimed.pipeline import REPORT, REPORT_FORMATS, STAGES, artifact_path, jobs, stage_outputs
from aimed.runners import dvc
from aimed.runners.snakemake import stage_output

RULES_DIR = REPO_ROOT / "workflow" / "rules"
RUN = "some-run"


def declared_outputs():
    """{rule: (stage, the report format its runs have or None for every format, its output)} of the rule files.

    Each rule's ``output:`` is a call of stage_output(stage[, report_format]) (``use rule ... with:``
    overrides it); the call is evaluated as the Snakefile evaluates it.
    """
    rules = {}
    for path in sorted(RULES_DIR.glob("*.smk")):
        text = path.read_text()
        heads = list(re.finditer(r"^(?:rule (\w+)|use rule \w+ as (\w+) with):", text, re.M))
        for i, head in enumerate(heads):
            body = text[head.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            call = re.search(r"^\s+output:\s*\n\s+(stage_output\((.*)\)),?\s*$", body, re.M)
            if call is None:
                continue
            args = eval(f"({call.group(2)},)", {**vars(pipeline)})  # the rule files see aimed.pipeline's names
            report_format = args[1] if len(args) > 1 else None
            rules[head.group(1) or head.group(2)] = (args[0], report_format, stage_output(*args))
    return rules


def test_every_stage_has_a_rule_declaring_its_outputs():
    rules = declared_outputs()
    assert {stage for stage, _, _ in rules.values()} == set(STAGES)
    assert {fmt for stage, fmt, _ in rules.values() if stage == "evaluate"} == set(REPORT_FORMATS)


@pytest.mark.parametrize("report_format", REPORT_FORMATS)
def test_rules_and_dvc_yaml_declare_the_pipeline_outputs(report_format):
    rules = declared_outputs()
    for name in STAGES:
        declared = [paths for stage, fmt, paths in rules.values() if stage == name and fmt in (None, report_format)]
        assert len(declared) == 1, f"{name}: {len(declared)} rules for runs reporting as {report_format}"
        assert tuple(str(p) for p in declared[0]) == stage_outputs(name, report_format), name

    run_config = {"evaluation": {"report_format": report_format}}
    workflow_config = {"runs": [RUN], "datasets": {}}
    built = dvc.build(workflow_config, REPO_ROOT, {RUN: run_config})
    for name, split in jobs():
        wildcards = {"run": RUN, "split": split or ""}
        expected = stage_outputs(name, report_format, **wildcards)
        assert dvc.stage_files(RUN, name, split, report_format) == expected
        folder, *state = built["stages"][dvc.stage_name(RUN, name, split)]["outs"]
        assert state == ([{f"state/{RUN}/train": {"persist": True}}] if name == "train" else [])
        assert {p for p in expected if p.startswith(folder + "/")} == set(expected)
    plotted = [path for plot in built["plots"] for path in plot]
    assert plotted[0] == stage_outputs("train", report_format, run=RUN)[0]
    report = artifact_path(REPORT, RUN, pipeline.CONFUSION_PLOT_SPLIT, report_format)
    assert report in stage_outputs("evaluate", report_format, run=RUN, split=pipeline.CONFUSION_PLOT_SPLIT)
    assert (report in plotted) == (report_format == "csv")  # DVC plots read CSV only
    for metric in built["metrics"]:
        assert any(metric in stage_outputs("evaluate", report_format, run=RUN, split=s) for s in pipeline.EVAL_SPLITS)
