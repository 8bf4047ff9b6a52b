"""Image geometry, derived from the run config."""

CHANNELS = 1


def image_shape(config):
    """(height, width, channels) of one preprocessed digit."""
    return (int(config.input_height), int(config.input_width), CHANNELS)
