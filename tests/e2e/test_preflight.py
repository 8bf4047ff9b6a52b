"""Bad class paths and evaluation keys stop every stage before it does any work; user errors name their line.

Each case runs a stage through the ``aimed`` command in this process, on a fresh copy of the
training template, and checks the exit code, the one-paragraph message, and that nothing was
written: no results folder, no state folder.
"""

from __future__ import annotations

import pathlib

import pytest

from aimed import cli

RUN = "mnist-tf"


def run_stage(project: pathlib.Path, capsys, *args: str) -> tuple:
    code = cli.main([*args[:1], RUN, *args[1:], "--project-dir", str(project)])
    return code, capsys.readouterr().err


def written(project: pathlib.Path) -> list:
    """What a stage of the run wrote: results other than the template's validation, and any state."""
    results = sorted(p.relative_to(project).as_posix() for p in (project / "results" / RUN).iterdir()
                     if p.name != "validate_data") if (project / "results" / RUN).is_dir() else []
    return results + (["state/" + RUN] if (project / "state" / RUN).exists() else [])


BAD_CLASS_PATHS = {
    "unknown evaluator module": ({"evaluator_class": "evaluators.Evaluator"},
                                 "key 'evaluator_class' is 'evaluators.Evaluator', but there is no module 'evaluators'"),
    "class path without a class part": ({"model_builder_class": "pkg.models"},
                                        "which names the module"),
    "class of the wrong base": ({"model_builder_class": "preprocessing.Preprocessor"},
                                "must subclass aimed.ModelBuilderBase"),
    "unknown class": ({"data_loader_class": "dataset.Loader"}, "has no attribute 'Loader'"),
    "missing src_code_path folder": ({"src_code_path": "source"}, "key 'src_code_path' is 'source'"),
}


@pytest.mark.parametrize("stage", [["validate-data"], ["check-preprocessing"], ["train"], ["export"],
                                   ["evaluate", "--split", "test"]])
@pytest.mark.parametrize("case", sorted(BAD_CLASS_PATHS))
def test_every_stage_resolves_every_class_first_and_writes_nothing(case, stage, train_project, capsys):
    overrides, expected = BAD_CLASS_PATHS[case]
    project = train_project(overrides)
    package = project / "src" / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text("from aimed import ModelBuilderBase\n\n\nclass Builder(ModelBuilderBase):\n"
                                       "    def get_compiled_model(self):\n        return None\n")
    code, err = run_stage(project, capsys, *stage)
    assert code == 2, err
    assert expected in err and len(err.strip().splitlines()) == 1, err
    if case == "class path without a class part":
        assert "'pkg.models.<ClassName>'" in err and "(Builder)" in err
    assert written(project) == []


def test_a_slice_by_column_that_no_report_will_have_stops_validate_data(train_project, capsys):
    project = train_project({"evaluation": {"slice_by": ["scanner"]}})
    code, err = run_stage(project, capsys, "validate-data")
    assert code == 2, err
    assert "key 'evaluation.slice_by' names 'scanner'" in err
    assert "get_metadata('validation') of dataset.DataLoaderTF returns None" in err
    assert not (project / "results" / RUN / "validate_data" / "fingerprint.json").exists() or written(project) == []


def test_worst_by_that_is_not_an_eval_function_stops_the_first_stage(train_project, capsys):
    project = train_project({"evaluation": {"worst_by": "dice"}})
    code, err = run_stage(project, capsys, "check-preprocessing")
    assert code == 2 and "key 'evaluation.worst_by' is 'dice', which is not an eval function" in err, err
    assert written(project) == []


CONSTRUCTOR = '''


class OwnInitLoader(DataLoaderTF):
    """Test only: a constructor of its own that wants more than aimed passes."""

    def __init__(self, config, data_dir, cache_dir):
        super().__init__(config, data_dir)


class CastingPreprocessorTF(PreprocessorTF):
    """Test only: batchify calls a helper that fails."""

    def batchify(self, generator, n_data_points):
        return cast_everything(generator), 1
'''

HELPER = '''


def cast_everything(generator):
    raise ValueError("could not convert string to float: 'digit_1749.png'")
'''


def test_a_constructor_type_error_says_how_aimed_builds_the_component(train_project, capsys):
    project = train_project({"data_loader_class": "dataset.OwnInitLoader"})
    with (project / "src" / "dataset.py").open("a") as f:
        f.write(CONSTRUCTOR.split("class CastingPreprocessorTF")[0])
    code, err = run_stage(project, capsys, "validate-data")
    assert code == 2, err
    assert "building it as OwnInitLoader(config, data_dir) raised TypeError" in err
    assert "data_dir: the dataset folder" in err


def test_an_error_in_user_code_names_the_component_the_method_and_the_line(train_project, capsys):
    project = train_project({"preprocessor_class": "preprocessing.CastingPreprocessorTF"})
    with (project / "src" / "preprocessing.py").open("a") as f:
        f.write(HELPER + "\n\nclass CastingPreprocessorTF" + CONSTRUCTOR.split("class CastingPreprocessorTF")[1])
    source = (project / "src" / "preprocessing.py").read_text().splitlines()
    batchify_line = next(i for i, line in enumerate(source, 1) if "return cast_everything(generator)" in line)
    helper_line = next(i for i, line in enumerate(source, 1) if "raise ValueError" in line)
    code, err = run_stage(project, capsys, "check-preprocessing")
    assert code == 1, err
    path = (project / "src" / "preprocessing.py").resolve()
    assert (f"CastingPreprocessorTF.batchify (the Preprocessor, {path}, line {batchify_line}), in cast_everything "
            f"at {path}, line {helper_line} raised ValueError: could not convert string to float") in err, err
    assert "--debug" in err

    code, err = run_stage(project, capsys, "check-preprocessing", "--debug")
    assert code == 1
    assert f'File "{path}", line {batchify_line}, in batchify' in err  # the user's frames, in the traceback
    assert f'File "{path}", line {helper_line}, in cast_everything' in err
