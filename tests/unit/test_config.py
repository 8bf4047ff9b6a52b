"""Run configs: every kind of bad config gets its own specific, one-paragraph error; defaults,
attribute access and warnings work; the ``aimed`` command maps config errors to exit code 2.

Every config here is the real ``runs/<run>/config.yaml`` with a few keys overridden.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import warnings
from typing import Any, Dict, Iterable, Mapping, Optional

import pytest
import yaml
from conftest import REPO_ROOT, deep_update

from aimed.components import DataLoaderBase, PreprocessorBase
from aimed.config import ConfigStruct, load_config
from aimed.errors import ComponentError, ConfigError
from aimed.loading import check_components, load_class

SCHEMA_PATH = REPO_ROOT / "aimed" / "schemas" / "run.schema.yaml"

#: Extra modules written into the test project's copy of src/.
EXTRA_MODULES = {
    "broken.py": """
        from aimed import DataLoaderBase

        raise RuntimeError("cannot reach the label server")
    """,
    "bad_syntax.py": """
        def oops(:
            pass
    """,
    "half_done.py": """
        from aimed import DataLoaderBase


        class HalfLoader(DataLoaderBase):
            def create_training_generator(self):
                return iter([]), 0
    """,
    "not_a_class.py": """
        DataLoader = "just a string"
    """,
    # Shadows the standard library's json, which is imported long before any user module.
    "json.py": """
        from aimed import DataLoaderBase


        class Loader(DataLoaderBase):
            pass
    """,
}


# ----------------------------------------------------------------------------- helpers


def real_config(run: str = "mnist-tf") -> Dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "runs" / run / "config.yaml").read_text())


def write_config(
    directory: pathlib.Path,
    overrides: Optional[Mapping[str, Any]] = None,
    remove: Iterable[str] = (),
    run: str = "mnist-tf",
) -> pathlib.Path:
    """Write the real config of ``run``, with ``overrides`` merged and dotted ``remove`` keys deleted."""
    data = deep_update(real_config(run), overrides or {})
    for dotted in remove:
        *parents, last = dotted.split(".")
        node = data
        for parent in parents:
            node = node[parent]
        del node[last]
    path = directory / "runs" / run / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_text(directory: pathlib.Path, text: str) -> pathlib.Path:
    path = directory / "config.yaml"
    path.write_text(text)
    return path


def config_error(path: pathlib.Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message.strip(), f"not one paragraph: {message!r}"
    return message


def component_error(path: pathlib.Path, key: str, project: pathlib.Path) -> str:
    config = load_config(path)
    with pytest.raises(ComponentError) as info:
        load_class(config, key, project)
    message = str(info.value)
    assert "\n" not in message.strip(), f"not one paragraph: {message!r}"
    assert str(path) in message and f"'{key}'" in message  # names the file and the key
    assert info.value.exit_code == 2
    return message


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> pathlib.Path:
    """A project folder with a copy of src/ plus a few broken modules."""
    root = tmp_path_factory.mktemp("config_project")
    shutil.copytree(REPO_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in EXTRA_MODULES.items():
        (root / "src" / name).write_text(textwrap.dedent(text))
    return root


# ----------------------------------------------------------------------------- schema errors


def test_real_configs_load_without_warnings():
    for run in ("mnist-tf", "mnist-gen"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            config = load_config(REPO_ROOT / "runs" / run / "config.yaml")
        assert config.project_name == "mnist"


def test_missing_required_key(tmp_path):
    path = write_config(tmp_path, remove=["epochs"])
    message = config_error(path)
    assert str(path) in message
    assert "required key 'epochs' is missing" in message
    assert "Number of training epochs" in message  # the schema's description says what to write
    assert str(SCHEMA_PATH) in message


def test_missing_src_code_path_key(tmp_path):
    message = config_error(write_config(tmp_path, remove=["src_code_path"]))
    assert "required key 'src_code_path' is missing" in message
    assert "Folder of the component modules" in message


def test_wrong_type(tmp_path):
    path = write_config(tmp_path, {"batch_size": "eight"})
    message = config_error(path)
    assert str(path) in message
    assert "key 'batch_size' is 'eight' (str); it must be of type integer" in message


def test_bad_enum_in_a_section(tmp_path):
    message = config_error(write_config(tmp_path, {"export": {"mode": "minn"}}))
    assert "key 'export.mode' is 'minn'" in message
    assert "must be one of min, max" in message


def test_epochs_zero(tmp_path):
    message = config_error(write_config(tmp_path, {"epochs": 0}))
    assert "key 'epochs' is 0; it must be >= 1" in message


def test_every_schema_error_is_listed_at_once(tmp_path):
    message = config_error(write_config(tmp_path, {"epochs": 0, "batch_size": "eight"}, remove=["src_code_path"]))
    assert "'epochs'" in message and "'batch_size'" in message and "'src_code_path'" in message


def test_project_name_is_optional(tmp_path):
    """abstractions 0.1.x took the project name from the repository; aimed from the project folder (MLflow)."""
    config = load_config(write_config(tmp_path, {}, remove=["project_name"]))
    assert config.project_name is None


def test_export_with_unknown_key(tmp_path):
    message = config_error(write_config(tmp_path, {"export": {"patience": 3}}))
    assert "section 'export'" in message
    assert "'patience' was unexpected" in message


def test_class_path_without_a_dot(tmp_path):
    message = config_error(write_config(tmp_path, {"data_loader_class": "DataLoaderTF"}))
    assert "key 'data_loader_class' is 'DataLoaderTF'" in message
    assert "module.ClassName" in message  # the fix: the form it must have


def test_export_section_missing_takes_the_defaults(tmp_path):
    config = load_config(write_config(tmp_path, remove=["export"]))
    assert (config.export.metric, config.export.mode) == ("val_loss", "min")


# ----------------------------------------------------------------------------- file-level errors


def test_broken_yaml_syntax_names_the_line(tmp_path):
    path = write_text(tmp_path, "epochs: 3\nbatch_size: [8\nproject_name: mnist\n")
    message = config_error(path)
    assert str(path) in message
    assert "not valid YAML at line 3" in message
    assert "Fix the syntax" in message


def test_empty_file(tmp_path):
    path = write_text(tmp_path, "")
    message = config_error(path)
    assert str(path) in message and "is empty" in message


def test_comments_only_file_is_empty(tmp_path):
    assert "is empty" in config_error(write_text(tmp_path, "# nothing yet\n"))


def test_yaml_list_instead_of_a_mapping(tmp_path):
    message = config_error(write_text(tmp_path, "- epochs: 3\n- batch_size: 8\n"))
    assert "must be a YAML mapping" in message
    assert "holds a list" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "config.yaml"
    message = config_error(path)
    assert str(path) in message and "does not exist" in message


def test_binary_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    message = config_error(path)
    assert str(path) in message


def test_python_tags_are_rejected_not_executed(tmp_path):
    marker = tmp_path / "executed"
    data = real_config()
    text = yaml.safe_dump(data, sort_keys=False)
    text += f"hook: !!python/object/apply:os.system ['touch {marker}']\n"
    path = write_text(tmp_path, text)
    line = text.splitlines().index(f"hook: !!python/object/apply:os.system ['touch {marker}']") + 1
    message = config_error(path)
    assert not marker.exists()
    assert f"at line {line}" in message
    assert "python/object/apply:os.system" in message
    assert "safe_load" in message


def test_python_object_tag_at_top_level(tmp_path):
    message = config_error(write_text(tmp_path, "!!python/object:aimed.config.ConfigStruct {}\n"))
    assert "unsupported YAML tag" in message and "python/object" in message


# ----------------------------------------------------------------------------- class paths


def test_unknown_module(tmp_path, project):
    path = write_config(tmp_path, {"data_loader_class": "datasets.DataLoaderTF"})
    message = component_error(path, "data_loader_class", project)
    assert "no module 'datasets'" in message
    assert str(project / "src" / "datasets.py") in message  # where it looked
    assert "Modules found there: " in message and "dataset" in message and "preprocessing" in message


def test_unknown_module_through_check_components(tmp_path, project):
    path = write_config(tmp_path, {"evaluator_class": "evaluators.Evaluator"})
    with pytest.raises(ComponentError,
                       match=r"key 'evaluator_class' is 'evaluators.Evaluator', but there is no module 'evaluators'"):
        check_components(load_config(path), project)


def test_missing_class_lists_the_classes_found(tmp_path, project):
    path = write_config(tmp_path, {"data_loader_class": "dataset.DataLoaderTf"})
    message = component_error(path, "data_loader_class", project)
    assert "has no attribute 'DataLoaderTf'" in message
    assert "Classes defined there: DataLoader, DataLoaderTF" in message  # imported names such as DataLoaderBase are left out
    assert "Fix the class name" in message


def test_class_of_the_wrong_base(tmp_path, project):
    path = write_config(tmp_path, {"data_loader_class": "preprocessing.Preprocessor"})
    message = component_error(path, "data_loader_class", project)
    assert "Preprocessor in" in message
    assert "aimed.components.PreprocessorBase" in message  # what it is
    assert "must subclass aimed.DataLoaderBase" in message  # what it must be
    assert "class Preprocessor(DataLoaderBase)" in message  # how to fix it


def test_attribute_that_is_not_a_class(tmp_path, project):
    path = write_config(tmp_path, {"data_loader_class": "not_a_class.DataLoader"})
    message = component_error(path, "data_loader_class", project)
    assert "is a str, not a class" in message


def test_class_that_leaves_abstract_methods_out(tmp_path, project):
    path = write_config(tmp_path, {"data_loader_class": "half_done.HalfLoader"})
    message = component_error(path, "data_loader_class", project)
    assert "does not implement the abstract method(s) create_test_generator, create_validation_generator" in message


def test_module_that_raises_at_import(tmp_path, project):
    path = write_config(tmp_path, {"data_loader_class": "broken.DataLoader"})
    message = component_error(path, "data_loader_class", project)
    assert f"importing {project / 'src' / 'broken.py'} failed with RuntimeError: cannot reach the label server" in message
    assert "python -c 'import broken'" in message  # how to see the traceback


def test_module_with_a_syntax_error(tmp_path, project):
    path = write_config(tmp_path, {"data_loader_class": "bad_syntax.DataLoader"})
    message = component_error(path, "data_loader_class", project)
    assert "failed with SyntaxError" in message and "bad_syntax.py" in message


def test_module_shadowed_by_an_installed_module(tmp_path, project):
    path = write_config(tmp_path, {"data_loader_class": "json.Loader"})
    message = component_error(path, "data_loader_class", project)
    assert "an installed module of the same name" in message and "Rename your module" in message


def test_src_code_path_folder_missing(tmp_path, project):
    path = write_config(tmp_path, {"src_code_path": "source"})
    with pytest.raises(ConfigError) as info:
        load_class(load_config(path), "data_loader_class", project)
    message = str(info.value)
    assert str(path) in message
    assert "key 'src_code_path' is 'source'" in message
    assert f"{project / 'source'} is not a folder" in message


def test_same_named_modules_of_two_runs_do_not_clash(tmp_path):
    """Two runs with their own src/loader.py, loaded alternately in one process, each get their own class."""
    configs = {}
    for run in ("run_a", "run_b"):
        src = tmp_path / run / "src"
        src.mkdir(parents=True)
        (src / "loader.py").write_text(textwrap.dedent(f"""
            from aimed import DataLoaderBase

            RUN = "{run}"


            class Loader(DataLoaderBase):
                create_training_generator = create_validation_generator = create_test_generator = None
        """).replace("= None", "= lambda self: (iter([]), 0)"))
        configs[run] = load_config(write_config(tmp_path / run, {"src_code_path": "src", "data_loader_class": "loader.Loader"}))
    for run in ("run_a", "run_b", "run_a", "run_b"):
        cls = load_class(configs[run], "data_loader_class", tmp_path / run)
        assert sys.modules[cls.__module__].RUN == run
        assert pathlib.Path(sys.modules[cls.__module__].__file__) == tmp_path / run / "src" / "loader.py"
        other = "run_b" if run == "run_a" else "run_a"
        assert str(tmp_path / other / "src") not in sys.path  # the other run's modules cannot leak in


def test_check_components_accepts_the_real_config_and_rejects_a_wrong_base(tmp_path, project):
    check_components(load_config(write_config(tmp_path)), project)
    classes = {key: load_class(load_config(write_config(tmp_path)), key, project) for key in
               ("data_loader_class", "preprocessor_class", "augmentor_class")}
    assert issubclass(classes["data_loader_class"], DataLoaderBase)
    assert issubclass(classes["preprocessor_class"], PreprocessorBase)
    assert classes["augmentor_class"] is None  # optional, unset
    path = write_config(tmp_path, {"model_builder_class": "evaluation.Evaluator"})
    with pytest.raises(ComponentError, match="key 'model_builder_class'.*must subclass aimed.ModelBuilderBase"):
        check_components(load_config(path), project)


# ----------------------------------------------------------------------------- valid configs


def test_partial_export_keeps_the_default_mode(tmp_path):
    data = real_config()
    data["export"] = {"metric": "val_accuracy"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    assert config.export.metric == "val_accuracy"
    assert config.export.mode == "min"


def test_defaults_are_merged(tmp_path):
    config = load_config(write_config(tmp_path, remove=["data_dir", "input_height"]))
    assert config.seed == 101
    assert config.data_dir == "datasets/mnist"
    assert config.input_height == 28
    assert config.augmentor_class is None
    assert config.mlflow.enabled is True  # nested defaults of a section the file leaves out
    assert config.evaluation.splits == ["validation", "test"]


def test_nested_attribute_and_item_access(tmp_path):
    config = load_config(write_config(tmp_path, {"model_builder": {"n_filters": 16}}))
    assert isinstance(config, ConfigStruct)
    assert isinstance(config.export, ConfigStruct)
    assert config.export.metric == "val_loss"
    assert config["export"]["metric"] == "val_loss"
    assert config.model_builder.n_filters == 16
    assert config.model_builder.activation == "relu"
    assert config.data_loader.shuffle is True
    assert config.source == str(write_config(tmp_path, {"model_builder": {"n_filters": 16}}))
    assert config.to_dict()["model_builder"]["n_filters"] == 16
    assert dict(config.export) == {"metric": "val_loss", "mode": "min"}


def test_config_is_read_only_and_names_missing_keys(tmp_path):
    path = write_config(tmp_path)
    config = load_config(path)
    with pytest.raises(AttributeError, match="read-only"):
        config.epochs = 3
    with pytest.raises(AttributeError, match=r"no key 'n_filter' in .*config.yaml; keys: \[.*'n_filters'"):
        _ = config.model_builder.n_filter
    config.to_dict()["epochs"] = 99  # a copy
    assert config.epochs == 10


def test_unknown_top_level_key_warns_naming_it(tmp_path):
    path = write_config(tmp_path, {"epoch": 3})
    with pytest.warns(UserWarning, match="unknown top-level key.*epoch") as record:
        config = load_config(path)
    assert str(path) in str(record[0].message)
    assert "epochs" in str(record[0].message)  # the known keys, to spot the typo
    assert config.epoch == 3


# ----------------------------------------------------------------------------- the aimed command


def aimed(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    exe = pathlib.Path(sys.executable).with_name("aimed")
    command = [str(exe)] if exe.is_file() else [sys.executable, "-m", "aimed.cli"]
    return subprocess.run(command + list(args), cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def assert_one_paragraph(stderr: str, command: str) -> str:
    text = stderr.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, f"not one paragraph:\n{stderr}"
    assert text.startswith(f"aimed {command}: error: ")
    return text


def test_cli_bad_config_exits_2_with_one_paragraph(tmp_path, project):
    path = write_config(tmp_path, {"epochs": 0})
    proc = aimed("validate-data", str(path), "--project-dir", str(project), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    text = assert_one_paragraph(proc.stderr, "validate-data")
    assert str(path) in text and "key 'epochs' is 0; it must be >= 1" in text
    assert proc.stdout == ""


def test_cli_bad_class_path_exits_2(tmp_path, project):
    (tmp_path / "data").mkdir()
    path = write_config(tmp_path, {"data_dir": str(tmp_path / "data"), "data_loader_class": "datasets.DataLoaderTF"})
    proc = aimed("validate-data", str(path), "--project-dir", str(project), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    text = assert_one_paragraph(proc.stderr, "validate-data")
    assert "no module 'datasets'" in text


def test_cli_debug_prints_the_traceback(tmp_path, project):
    path = write_config(tmp_path, {"epochs": 0})
    proc = aimed("--debug", "validate-data", str(path), "--project-dir", str(project), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_cli_unknown_run_name_exits_2(tmp_path, project):
    proc = aimed("validate-data", "no-such-run", "--project-dir", str(project), cwd=tmp_path)
    assert proc.returncode == 2
    text = assert_one_paragraph(proc.stderr, "validate-data")
    assert "no run config at" in text and str(project / "runs" / "no-such-run" / "config.yaml") in text


def test_cli_bad_usage_exits_2(tmp_path):
    proc = aimed("evaluate", "mnist-tf", "--split", "training", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "invalid choice: 'training'" in proc.stderr and "--help" in proc.stderr


def test_help_does_not_import_tensorflow(tmp_path):
    code = textwrap.dedent(
        """
        import contextlib, io, sys
        import aimed.cli
        parser = aimed.cli.build_parser()
        for argv in (["--help"], ["validate-data", "--help"], ["evaluate", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                try:
                    aimed.cli.main(argv)
                except SystemExit as exc:
                    assert exc.code == 0, exc.code
            assert "usage: aimed" in out.getvalue(), out.getvalue()
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "mlflow"))
        print("HEAVY:", heavy)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY: []" in proc.stdout, proc.stdout


def test_stages_import_keras_without_scikit_learn(tmp_path):
    """A stage's TensorFlow import leaves out Keras' scikit-learn wrappers (seconds of start-up), yet
    scikit-learn stays importable afterwards; where it is imported first, Keras gets it."""
    code = textwrap.dedent(
        """
        import sys
        from aimed._tensorflow import import_tensorflow
        import_tensorflow()
        import keras
        assert "keras" in sys.modules and "sklearn" not in sys.modules, sorted(m for m in sys.modules if "sklearn" in m)
        import sklearn.base
        print("OK", sklearn.base.BaseEstimator.__name__)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "OK BaseEstimator" in proc.stdout
