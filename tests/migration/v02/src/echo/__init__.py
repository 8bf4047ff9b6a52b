"""LV-cavity segmentation on echo frames: the five components of the legacy-v02 run."""

from .loading import EchoLoader
from .transforms import EchoPreprocessor, FlipAugmentor
from .unet import UNetBuilder
from .evaluation import EchoEvaluator

__all__ = ['EchoLoader', 'EchoPreprocessor', 'FlipAugmentor', 'UNetBuilder', 'EchoEvaluator']
