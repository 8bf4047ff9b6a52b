"""aimed: a reproducible training pipeline for TensorFlow/Keras models.

The public API is the component bases, :class:`ConfigStruct`, :func:`load_config`,
:mod:`aimed.metrics`, :class:`Orchestrator` and the ``aimed`` command. Importing this package does not import TensorFlow.
"""

from aimed.components import (
    AugmentorBase,
    BaseClass,
    DataLoaderBase,
    EvaluatorBase,
    ModelBuilderBase,
    PreprocessorBase,
)
from aimed.config import ConfigStruct, load_config
from aimed.errors import AimedError, ComponentError, ConfigError, StageFailed
from aimed.orchestrator import Orchestrator

__version__ = "0.1.0"

__all__ = [
    "AugmentorBase",
    "BaseClass",
    "DataLoaderBase",
    "EvaluatorBase",
    "ModelBuilderBase",
    "PreprocessorBase",
    "ConfigStruct",
    "load_config",
    "AimedError",
    "ComponentError",
    "ConfigError",
    "StageFailed",
    "Orchestrator",
    "__version__",
]
