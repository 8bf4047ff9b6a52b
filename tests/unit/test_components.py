"""The component bases: ``config=None`` works, defaults come before the config, the default
hooks, the ``add_preprocess`` chain, and enforcement of the abstract methods.

The example components are the tutorial's, loaded from a copy of ``src/`` through
:func:`aimed.loading.load_class`, as a run would load them.
"""

from __future__ import annotations

import pathlib
import shutil
from typing import Dict

import numpy as np
import pytest
import yaml
from conftest import REPO_ROOT, deep_update, prepare_dataset

import aimed
from aimed.components import (
    COMPONENT_KEYS,
    AugmentorBase,
    BaseClass,
    DataLoaderBase,
    EvaluatorBase,
    ModelBuilderBase,
    PreprocessorBase,
)
from aimed.config import load_config
from aimed.loading import load_class

SIZES = {"train": 6, "validation": 5, "test": 5}


# ----------------------------------------------------------------------------- helpers






@pytest.fixture(scope="module")
def project(tmp_path_factory) -> pathlib.Path:
    """A project with a copy of src/, a tiny dataset, and the real example run configs."""
    root = tmp_path_factory.mktemp("components_project")
    shutil.copytree(REPO_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    prepare_dataset(root / "data", **SIZES)
    for run in ("mnist-tf", "mnist-gen"):
        data = yaml.safe_load((REPO_ROOT / "runs" / run / "config.yaml").read_text())
        deep_update(data, {"data_dir": "data", "batch_size": 4, "preprocessor": {"normalize_by": 2},
                            "data_loader": {"shuffle": False}, "model_builder": {"n_filters": 8}})
        (root / "runs" / run).mkdir(parents=True)
        (root / "runs" / run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def tf_config(project):
    return load_config(project / "runs" / "mnist-tf" / "config.yaml")


@pytest.fixture(scope="module")
def gen_config(project):
    return load_config(project / "runs" / "mnist-gen" / "config.yaml")


@pytest.fixture(scope="module")
def example(project, tf_config, gen_config) -> Dict[str, type]:
    """The example classes of src/, by class name."""
    classes = {}
    for config in (tf_config, gen_config):
        for key in COMPONENT_KEYS:
            cls = load_class(config, key, project)
            if cls is not None:
                classes[cls.__name__] = cls
    assert set(classes) == {"DataLoaderTF", "DataLoader", "PreprocessorTF", "Preprocessor", "ModelBuilder", "Evaluator"}
    return classes


# ----------------------------------------------------------------------------- BaseClass


class Recorder(BaseClass):
    def _set_defaults(self):
        self.calls = ["defaults"]
        self.value = "default"
        self.other = "untouched default"

    def _load_params(self, config):
        self.calls.append("params")
        # Reads a default set by _set_defaults: fails if the order were reversed.
        self.seen_before_load = self.value
        self.value = config["value"]


def test_defaults_then_params_in_that_order():
    component = Recorder({"value": "from config"})
    assert component.calls == ["defaults", "params"]
    assert component.seen_before_load == "default"
    assert component.value == "from config"
    assert component.other == "untouched default"  # a key the config does not set keeps its default


def test_config_none_keeps_defaults_and_skips_load_params():
    component = Recorder(None)
    assert component.calls == ["defaults"]
    assert component.value == "default"
    assert component.config is None


def test_config_is_stored_on_the_component(tf_config):
    component = Recorder({"value": 1})
    assert component.config == {"value": 1}
    assert minimal_classes()["ModelBuilderBase"](tf_config).config is tf_config


# ----------------------------------------------------------------------------- minimal subclasses


def minimal_classes() -> Dict[str, type]:
    """A concrete minimal subclass of every base, implementing only the abstract methods."""

    class MinimalLoader(DataLoaderBase):
        def create_training_generator(self):
            return iter([(np.zeros(2), 0, 1.0)] * 3), 3

        def create_validation_generator(self):
            return iter([(np.zeros(2), 1, 1.0)] * 2), 2

        def create_test_generator(self):
            return iter([(np.zeros(2), 1, "id_0"), (np.zeros(2), 0, "id_1")]), 2

    class MinimalAugmentor(AugmentorBase):
        def add_augmentation(self, generator):
            return ((x + 1, y, w) for x, y, w in generator)

    class MinimalPreprocessor(PreprocessorBase):
        def image_preprocess(self, image):
            return image

        def label_preprocess(self, label):
            return label

        def add_image_preprocess(self, generator):
            return generator

        def add_label_preprocess(self, generator):
            return generator

        def batchify(self, generator, n_data_points):
            return generator, n_data_points

    class MinimalModelBuilder(ModelBuilderBase):
        def get_compiled_model(self):
            return "model"

    class MinimalEvaluator(EvaluatorBase):
        def get_eval_funcs(self):
            return {"zero": lambda y_true, y_pred: 0.0}

    return {
        "DataLoaderBase": MinimalLoader,
        "AugmentorBase": MinimalAugmentor,
        "PreprocessorBase": MinimalPreprocessor,
        "ModelBuilderBase": MinimalModelBuilder,
        "EvaluatorBase": MinimalEvaluator,
    }


@pytest.mark.parametrize("base", [b.__name__ for b in COMPONENT_KEYS.values()])
def test_minimal_subclass_works_with_config_none(base, tmp_path):
    cls = minimal_classes()[base]
    component = cls(None, tmp_path) if base == "DataLoaderBase" else cls(None)
    assert isinstance(component, getattr(aimed, base))
    assert component.config is None


def test_base_default_hooks():
    classes = minimal_classes()
    loader = classes["DataLoaderBase"](None, "some/dir")
    assert loader.data_dir == pathlib.Path("some/dir")  # a str data_dir becomes a Path
    assert loader.get_validation_index() is None
    assert loader.get_metadata("test") is None
    builder = classes["ModelBuilderBase"](None)
    assert builder.get_callbacks() == []
    assert builder.get_class_weight() is None
    source = iter([(1, 2, 3)])
    assert classes["PreprocessorBase"](None).add_weight_preprocess(source) is source


def test_data_loader_sets_data_dir_before_set_defaults(tmp_path):
    class UsesDataDir(minimal_classes()["DataLoaderBase"]):
        def _set_defaults(self):
            self.labels_path = self.data_dir / "labels.csv"

    assert UsesDataDir(None, tmp_path).labels_path == tmp_path / "labels.csv"


def test_data_loader_takes_both_abstractions_constructors(tmp_path):
    """0.1.x: DataLoader(config, data_dir); v0.2: DataLoader(config), the folder from config.data_dir."""
    from aimed import ConfigStruct

    base = minimal_classes()["DataLoaderBase"]
    config = ConfigStruct({"data_dir": str(tmp_path / "v02")})

    class V02(base):
        def __init__(self, config):
            super().__init__(config)

        def _set_defaults(self):
            self.seen_at_defaults = self.data_dir

    assert V02(config).seen_at_defaults == tmp_path / "v02"
    assert base(config, tmp_path / "v01").data_dir == tmp_path / "v01"
    assert base(None).data_dir is None  # exploration without a config


def test_abstractions_import_paths_resolve():
    import importlib

    import aimed

    paths = {"base_class": "BaseClass", "data_loading": "DataLoaderBase", "preprocessing": "PreprocessorBase",
             "augmentation": "AugmentorBase", "model_building": "ModelBuilderBase", "evaluation": "EvaluatorBase",
             "utils": "ConfigStruct"}
    for module, name in paths.items():
        assert getattr(importlib.import_module(f"aimed.{module}"), name) is getattr(aimed, name), module
    from aimed.utils import load_config_file

    assert load_config_file is not None


def test_a_preprocessing_step_that_returns_none_is_named():
    from aimed.errors import StageFailed

    class Forgetful(minimal_classes()["PreprocessorBase"]):
        def add_label_preprocess(self, generator):
            generator = iter(generator)  # and no return

    with pytest.raises(StageFailed, match=r"Forgetful.add_label_preprocess\(\) returned None"):
        Forgetful(None).add_preprocess(iter([]), 0)


def test_augmentor_default_validation_augmentation_is_identity():
    augmentor = minimal_classes()["AugmentorBase"](None)
    source = iter([(np.ones(2), 3, 1.0)])
    assert augmentor.add_validation_augmentation(source) is source
    augmented = list(augmentor.add_augmentation(iter([(np.ones(2), 3, 1.0)])))
    np.testing.assert_array_equal(augmented[0][0], np.full(2, 2.0))  # the training hook does change it


# ----------------------------------------------------------------------------- add_preprocess


class ChainRecorder(PreprocessorBase):
    """Each hook tags the source it is given, so the chain's order is visible in the result."""

    def _set_defaults(self):
        self.calls = []

    def image_preprocess(self, image):
        return image

    def label_preprocess(self, label):
        return label

    def add_image_preprocess(self, generator):
        self.calls.append(("image", list(generator)))
        return ["image"]

    def add_label_preprocess(self, generator):
        self.calls.append(("label", generator))
        return generator + ["label"]

    def add_weight_preprocess(self, generator):
        self.calls.append(("weight", generator))
        return generator + ["weight"]

    def batchify(self, generator, n_data_points):
        self.calls.append(("batchify", generator, n_data_points))
        return generator + ["batched"], n_data_points // 2


def test_add_preprocess_chains_image_label_weight_then_batchify():
    preprocessor = ChainRecorder(None)
    result, n_iter = preprocessor.add_preprocess(iter(["raw"]), 10)
    assert [c[0] for c in preprocessor.calls] == ["image", "label", "weight", "batchify"]
    assert preprocessor.calls[0] == ("image", ["raw"])  # the image hook gets the raw source
    assert preprocessor.calls[1] == ("label", ["image"])  # each hook gets the previous hook's output
    assert preprocessor.calls[2] == ("weight", ["image", "label"])
    assert preprocessor.calls[3] == ("batchify", ["image", "label", "weight"], 10)  # and n is passed on
    assert (result, n_iter) == (["image", "label", "weight", "batched"], 5)


def test_add_preprocess_with_the_default_weight_hook():
    class Doubler(ChainRecorder):
        add_weight_preprocess = PreprocessorBase.add_weight_preprocess

    preprocessor = Doubler(None)
    result, _ = preprocessor.add_preprocess(iter(["raw"]), 4)
    assert [c[0] for c in preprocessor.calls] == ["image", "label", "batchify"]
    assert result == ["image", "label", "batched"]


# ----------------------------------------------------------------------------- abstract methods


ABSTRACT = {
    DataLoaderBase: {"create_training_generator", "create_validation_generator", "create_test_generator"},
    AugmentorBase: {"add_augmentation"},
    # image_preprocess and label_preprocess are optional, as in both abstractions generations.
    PreprocessorBase: {"add_image_preprocess", "add_label_preprocess", "batchify"},
    ModelBuilderBase: {"get_compiled_model"},
    EvaluatorBase: {"get_eval_funcs"},
}


def test_every_component_key_has_its_base():
    assert set(COMPONENT_KEYS.values()) == set(ABSTRACT)
    assert COMPONENT_KEYS["data_loader_class"] is DataLoaderBase
    assert COMPONENT_KEYS["preprocessor_class"] is PreprocessorBase


@pytest.mark.parametrize("base", list(ABSTRACT), ids=lambda b: b.__name__)
def test_abstract_methods_are_enforced(base, tmp_path):
    assert set(base.__abstractmethods__) == ABSTRACT[base]
    args = (None, tmp_path) if base is DataLoaderBase else (None,)
    with pytest.raises(TypeError, match="abstract"):
        base(*args)

    def implement(names):
        return type(f"Partial{base.__name__}", (base,), {name: lambda self, *a: None for name in names})

    implement(ABSTRACT[base])(*args)  # all abstract methods implemented: instantiable
    for missing in sorted(ABSTRACT[base]):
        # Leaving out any one abstract method makes the subclass fail, naming that method.
        with pytest.raises(TypeError, match=missing):
            implement(ABSTRACT[base] - {missing})(*args)


def test_subclass_missing_an_abstract_method_fails_at_instantiation(tmp_path):
    class NoTest(DataLoaderBase):
        def create_training_generator(self):
            return iter([]), 0

        def create_validation_generator(self):
            return iter([]), 0

    with pytest.raises(TypeError, match="create_test_generator"):
        NoTest(None, tmp_path)


# ----------------------------------------------------------------------------- example classes


def test_example_model_builder_with_config_none(example):
    builder = example["ModelBuilder"](None)
    assert (builder.n_filters, builder.input_h, builder.input_w) == (512, 28, 28)
    model = builder.get_compiled_model()
    assert model.optimizer is not None and model.loss is not None  # compiled
    assert tuple(model.input_shape) == (None, 28 * 28)
    assert tuple(model.output_shape) == (None, 10)
    assert model.layers[0].units == 512


def test_example_model_builder_reads_the_config(example, tf_config):
    builder = example["ModelBuilder"](tf_config)
    assert builder.n_filters == 8
    assert builder.get_compiled_model().layers[0].units == 8


def test_example_data_loader_tf_with_config_none(example, project):
    loader = example["DataLoaderTF"](None, str(project / "data"))
    assert loader.shuffle is True
    assert loader.test_data_dir == project / "data" / "test"
    ds, n = loader.create_test_generator()
    assert n == SIZES["test"]
    elements = list(ds.as_numpy_iterator())
    assert len(elements) == n
    x, y, data_id = elements[0]
    assert x.shape == (28, 28, 1) and x.dtype == np.uint8
    assert data_id == b"image_0.jpg"
    assert list(loader.get_validation_index()) == [f"image_{i}.jpg" for i in range(SIZES["validation"])]


def test_example_data_loader_generator_with_config_none(example, project):
    loader = example["DataLoader"](None, project / "data")
    assert loader.shuffle is True
    gen, n = loader.create_test_generator()
    elements = list(gen)
    assert n == len(elements) == SIZES["test"]
    assert elements[0][0].shape == (28, 28)
    assert [e[2] for e in elements] == [f"image_{i}.jpg" for i in range(n)]


def test_example_data_loader_reads_shuffle_from_config(example, project, tf_config):
    assert example["DataLoaderTF"](tf_config, project / "data").shuffle is False


def test_example_preprocessor_tf_with_config_none(example, project):
    preprocessor = example["PreprocessorTF"](None)
    assert (preprocessor.batch_size, preprocessor.normalize_by) == (8, 255)
    ds, n = example["DataLoaderTF"](None, project / "data").create_test_generator()
    batches, n_iter = preprocessor.add_preprocess(ds, n)
    assert n_iter == 1  # 5 points in batches of 8
    x, y, ids = next(batches.as_numpy_iterator())
    assert x.shape == (n, 28 * 28)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_example_preprocessor_tf_reads_the_config(example, project, tf_config):
    preprocessor = example["PreprocessorTF"](tf_config)
    assert (preprocessor.batch_size, preprocessor.normalize_by) == (4, 2)
    ds, n = example["DataLoaderTF"](tf_config, project / "data").create_test_generator()
    batches, n_iter = preprocessor.add_preprocess(ds, n)
    assert n_iter == 2  # 5 points in batches of 4
    x, _, _ = next(batches.as_numpy_iterator())
    assert x.shape == (4, 28 * 28)
    assert x.max() > 1.0  # divided by 2, not 255


def test_example_preprocessor_generator_with_config_none(example, project):
    preprocessor = example["Preprocessor"](None)
    assert (preprocessor.batch_size, preprocessor.normalize_by) == (8, 255)
    gen, n = example["DataLoader"](None, project / "data").create_validation_generator()
    batches, n_iter = preprocessor.add_preprocess(gen, n)
    assert n_iter == 1
    x, y, w = next(batches)
    assert x.shape == (8, 28 * 28)  # full-size batches: the infinite validation generator wraps around
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(w, np.ones(8))


def test_example_evaluator_with_config_none(example):
    funcs = example["Evaluator"](None).get_eval_funcs()
    assert list(funcs) == ["sparse categorical ce"]
    value = funcs["sparse categorical ce"](np.array([3]), np.eye(10, dtype=np.float32)[[3]] * 0.9 + 0.01)
    assert float(value) == pytest.approx(-np.log(0.91), rel=1e-4)


@pytest.mark.parametrize("switches, augmented", [
    ({}, {"train", "validation"}),
    ({"do_train_augmentation": True, "do_validation_augmentation": False}, {"train"}),
    ({"do_train_augmentation": False, "do_validation_augmentation": True}, {"validation"}),
])
def test_augmentation_switches_of_abstractions_pick_the_augmented_splits(switches, augmented):
    from aimed import ConfigStruct
    from aimed.data import augmentor_for, batched_split

    class Loader(minimal_classes()["DataLoaderBase"]):
        def create_training_generator(self):
            return iter([(0, 0, 1.0)]), 1

        create_validation_generator = create_training_generator

    class Marking(minimal_classes()["AugmentorBase"]):
        def add_augmentation(self, generator):
            return ((x + 1, y, w) for x, y, w in generator)

        def add_validation_augmentation(self, generator):
            return self.add_augmentation(generator)

    class Listing(minimal_classes()["PreprocessorBase"]):
        def batchify(self, generator, n):
            return list(generator), n

    config = ConfigStruct(switches)
    seen = {split for split in ("train", "validation")
            if batched_split(Loader(None), augmentor_for(config, Marking(None), split), Listing(None), split)[0][0][0]}
    assert seen == augmented
