"""The five component bases users subclass, with the contract of the `abstractions` tutorial.

Every component is built as ``Component(config)``: ``_set_defaults()`` runs first, then
``_load_params(config)`` when a config is given, so ``Component(None)`` is a working object
for exploration in a notebook.
"""

from __future__ import annotations

import abc
import pathlib
from typing import Any, Callable, Iterator, Optional, Tuple, Union

#: What a data loader or preprocessor returns: a ``tf.data.Dataset`` or a Python generator.
DataSource = Union[Iterator[Any], Any]


class BaseClass(abc.ABC):
    """Base of every component: defaults first, then the config on top of them.

    Args:
        config: the run's :class:`aimed.ConfigStruct`, or ``None`` to keep the defaults.
    """

    def __init__(self, config: Optional[Any] = None) -> None:
        self.config = config
        self._set_defaults()
        if config is not None:
            self._load_params(config)

    def _set_defaults(self) -> None:
        """Set every parameter of the component to its default value."""

    def _load_params(self, config: Any) -> None:
        """Read the component's parameters from ``config``."""


def _returned(component: Any, method: str, source: Any) -> Any:
    """``source``, the value of ``component.method()``; a method that returned ``None`` is named."""
    if source is None:
        from aimed.errors import StageFailed

        raise StageFailed(
            f"{type(component).__name__}.{method}() returned None. It must return the source it was given, with its "
            f"work added (a tf.data.Dataset or a generator): check for a missing return statement."
        )
    return source


class DataLoaderBase(BaseClass):
    """Reads a dataset split by split.

    Training and validation sources yield ``(x, y, weight)``; the test source yields
    ``(x, y, data_id)``. Each ``create_*_generator`` returns ``(source, n)`` where ``source``
    is a ``tf.data.Dataset`` or a Python generator (which may be infinite) and ``n`` is the
    number of data points in the split.

    Both constructors of the ``abstractions`` generations work: ``DataLoader(config, data_dir)``
    (0.1.x) and ``DataLoader(config)`` (v0.2), which takes the folder from ``config.data_dir``.
    ``self.data_dir`` is set before ``_set_defaults`` runs.

    Args:
        config: the run config, or ``None`` for defaults.
        data_dir: the dataset's root folder; ``config.data_dir`` when left out.
    """

    def __init__(self, config: Optional[Any], data_dir: Union[str, pathlib.Path, None] = None) -> None:
        if data_dir is None and config is not None:
            data_dir = config.get("data_dir")
        self.data_dir = pathlib.Path(data_dir) if data_dir is not None else None
        super().__init__(config)

    @abc.abstractmethod
    def create_training_generator(self) -> Tuple[DataSource, int]:
        """Return ``(source of (x, y, weight), n)`` for the training split."""

    @abc.abstractmethod
    def create_validation_generator(self) -> Tuple[DataSource, int]:
        """Return ``(source of (x, y, weight), n)`` for the validation split, unshuffled."""

    @abc.abstractmethod
    def create_test_generator(self) -> Tuple[DataSource, int]:
        """Return ``(source of (x, y, data_id), n)`` for the test split, unshuffled."""

    def get_validation_index(self) -> Optional[Any]:
        """Return the ids of the validation data points in generator order, or ``None``."""
        return None

    def get_metadata(self, split: str) -> Optional[Any]:
        """Return a ``pandas.DataFrame`` of extra per-datapoint columns for ``split``, or ``None``.

        Its index must hold the data ids. The evaluation report joins these columns, and
        ``evaluation.slice_by`` can group by them.
        """
        return None


class AugmentorBase(BaseClass):
    """Adds augmentation to a ``(x, y, weight)`` source, before preprocessing."""

    @abc.abstractmethod
    def add_augmentation(self, generator: DataSource) -> DataSource:
        """Return the training source with augmentation applied."""

    def add_validation_augmentation(self, generator: DataSource) -> DataSource:
        """Return the validation source with augmentation applied; unchanged by default."""
        return generator


class PreprocessorBase(BaseClass):
    """Turns a source of single data points into a source of model-ready batches."""

    def image_preprocess(self, image: Any) -> Any:
        """Preprocess one input ``x``; unchanged by default (optional, as in ``abstractions``)."""
        return image

    def label_preprocess(self, label: Any) -> Any:
        """Preprocess one label ``y``; unchanged by default (optional, as in ``abstractions``)."""
        return label

    @abc.abstractmethod
    def add_image_preprocess(self, generator: DataSource) -> DataSource:
        """Return ``generator`` with :meth:`image_preprocess` applied to every ``x``."""

    @abc.abstractmethod
    def add_label_preprocess(self, generator: DataSource) -> DataSource:
        """Return ``generator`` with :meth:`label_preprocess` applied to every ``y``."""

    @abc.abstractmethod
    def batchify(self, generator: DataSource, n_data_points: int) -> Tuple[DataSource, int]:
        """Return ``(batched source, n_iter)``: the number of batches that cover every point once."""

    def add_weight_preprocess(self, generator: DataSource) -> DataSource:
        """Return ``generator`` with its third element (weight, or data id) transformed.

        Unchanged by default. Test sources carry the data id in this slot, so an override must
        leave non-numeric values alone.
        """
        return generator

    def add_preprocess(self, generator: DataSource, n_data_points: int) -> Tuple[DataSource, int]:
        """Chain image, label and weight preprocessing, then batch.

        Override it only when the pipeline does not fit this order. (aimed reads the test split
        through image and label preprocessing and ``batchify`` only, as ``abstractions`` did.)
        """
        gen = _returned(self, "add_image_preprocess", self.add_image_preprocess(generator))
        gen = _returned(self, "add_label_preprocess", self.add_label_preprocess(gen))
        gen = _returned(self, "add_weight_preprocess", self.add_weight_preprocess(gen))
        return self.batchify(gen, n_data_points)


class ModelBuilderBase(BaseClass):
    """Builds the compiled Keras model."""

    @abc.abstractmethod
    def get_compiled_model(self) -> Any:
        """Return a compiled ``keras.Model`` (optimizer, loss and metrics set)."""

    def get_callbacks(self) -> list:
        """Return extra Keras callbacks for ``fit``; none by default."""
        return []

    def get_class_weight(self) -> Optional[dict]:
        """Return ``{class index: weight}`` for ``fit``, or ``None``."""
        return None


EvalFunc = Callable[[Any, Any], Any]


class EvaluatorBase(BaseClass):
    """Names the per-datapoint metrics of the evaluation report."""

    @abc.abstractmethod
    def get_eval_funcs(self) -> dict:
        """Return ``{name: f(y_true, y_pred)}``; each ``f`` takes one data point, not a batch."""


#: Config key of each component's class path, and the base the class must subclass.
COMPONENT_KEYS = {
    "data_loader_class": DataLoaderBase,
    "augmentor_class": AugmentorBase,
    "preprocessor_class": PreprocessorBase,
    "model_builder_class": ModelBuilderBase,
    "evaluator_class": EvaluatorBase,
}
