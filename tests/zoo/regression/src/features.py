"""Feature engineering shared by the blob loaders."""
import numpy as np

BACKGROUND_PERCENTILE = 10.0


def stretch_contrast(images):
    """Map each image to [0, 1]: its background level goes to 0, its brightest pixel to 1.

    Works on a single (H, W) image or on a stack (..., H, W).
    """
    images = np.asarray(images, dtype=np.float32)
    low = np.percentile(images, BACKGROUND_PERCENTILE, axis=(-2, -1), keepdims=True)
    high = images.max(axis=(-2, -1), keepdims=True)
    span = np.maximum(high - low, 1.0)
    return np.clip((images - low) / span, 0.0, 1.0).astype(np.float32)
