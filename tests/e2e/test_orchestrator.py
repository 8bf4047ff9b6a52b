"""Orchestrator: a run's stages in one process, writing what the CLI writes (the notebook entry point)."""

from __future__ import annotations

import json

import pytest

from aimed import ConfigError, Orchestrator

RUN = "mnist-tf"


@pytest.mark.slow
def test_orchestrator_runs_every_stage_and_returns_their_results(train_project):
    project = train_project({"epochs": 1})
    results = Orchestrator(project / "runs" / RUN).run()
    assert list(results) == ["validate-data", "check-preprocessing", "train", "export", "evaluate:validation",
                             "evaluate:test"]
    assert results["validate-data"]["ok"] and results["check-preprocessing"]["ok"]
    assert results["train"]["epochs"] == 1
    for split in ("validation", "test"):
        summary = json.loads((project / "results" / RUN / "evaluate" / split / "summary.json").read_text())
        assert summary == json.loads(json.dumps(results[f"evaluate:{split}"]))
        assert (project / "results" / RUN / "evaluate" / split / "fingerprint.json").is_file()
    assert (project / "results" / RUN / "export" / "savedmodel" / "saved_model.pb").is_file()

    # One split, by the name its result has.
    again = Orchestrator(project / "runs" / RUN).run(["evaluate:test"])
    assert list(again) == ["evaluate:test"] and again["evaluate:test"]["n"] == results["evaluate:test"]["n"]


def test_orchestrator_refuses_an_unknown_stage(train_project):
    orchestrator = Orchestrator(train_project() / "runs" / RUN)
    with pytest.raises(ConfigError, match="unknown stage"):
        orchestrator.run(["evaluation"])
    with pytest.raises(ConfigError, match=r"unknown stage\(s\) evaluate:train; .* evaluate:<split> for the splits"):
        orchestrator.run(["export", "evaluate:train"])
