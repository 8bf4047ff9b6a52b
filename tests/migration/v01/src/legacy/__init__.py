"""Bars classifier, written against abstractions 0.1.x.

Components are re-exported here so that the run config can say ``legacy.MnistLikeLoader``.
The model lives in ``legacy.nets`` and is deliberately *not* imported here: data checks and
evaluation scripts should not pay for building the network code. Use ``legacy.nets.CNNBuilder``.
"""

from .data import MnistLikeLoader
from .prep import Preprocessor
from .aug import FlipAugmentor
from .scoring import Evaluator
