"""aimed._plots: PNG plots written atomically with matplotlib's Agg backend."""

from __future__ import annotations

import numpy as np
import pytest

from aimed._plots import (
    save_confusion_matrix,
    save_histogram,
    save_image_grid,
    save_training_curves,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(path):
    """The image in ``path``, checked to be a PNG and the only file of its folder."""
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    return matplotlib.image.imread(path)


def _not_blank(image) -> bool:
    return float(image[..., :3].std()) > 0


def test_image_grid_of_flat_2d_rgb_and_non_image_arrays(tmp_path):
    rng = np.random.default_rng(0)
    images = [
        rng.random(12 * 10),             # flat: reshaped to height x width
        rng.random((12, 10)),            # 2-D
        rng.random((12, 10, 1)),         # one channel
        rng.random((12, 10, 3)),         # RGB
        np.full((12, 10), 5.0),          # constant: drawn black, not divided by zero
        rng.random(7),                   # not an image: drawn as a line
    ]
    path = tmp_path / "plots" / "grid.png"
    save_image_grid(path, images, [f"#{i}" for i in range(len(images))], height=12, width=10, columns=4)
    image = _png(path)
    # 4 columns of 1.9 in and 2 rows of 2.4 in at 90 dpi
    assert image.shape[:2] == (round(2 * 2.4 * 90), round(4 * 1.9 * 90))
    assert _not_blank(image)


def test_image_grid_of_samples_with_several_inputs_shows_the_image_input(tmp_path):
    """A two-input model's sample (a scan and a vector of clinical values): the scan is drawn."""
    rng = np.random.default_rng(1)
    samples = [{"clinical": rng.random(6), "scan": rng.random((12, 10, 1))},
               [rng.random(3), rng.random(4)]]  # no image among the inputs: their values as a line
    path = tmp_path / "worst.png"
    save_image_grid(path, samples, ["P-1", "P-2"], height=12, width=10)
    assert _not_blank(_png(path))


def test_image_grid_of_no_images_still_writes_a_figure(tmp_path):
    path = tmp_path / "empty.png"
    save_image_grid(path, [], [], height=4, width=4)
    assert _png(path).shape[:2] == (round(2.4 * 90), round(1.9 * 90))


def test_image_grid_replaces_an_existing_file(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")
    save_image_grid(path, [np.eye(5)], ["eye"], height=5, width=5)
    assert _png(path).shape[:2] == (round(2.4 * 90), round(1.9 * 90))


def test_training_curves_one_panel_per_metric(tmp_path):
    pd = pytest.importorskip("pandas")
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7],
                            "accuracy": [0.5, 0.7, 0.8]})
    path = tmp_path / "curves.png"
    save_training_curves(path, history)
    image = _png(path)
    assert image.shape[:2] == (round(3.4 * 90), round(2 * 4.5 * 90))
    assert _not_blank(image)


def test_confusion_matrix_heat_map(tmp_path):
    path = tmp_path / "confusion.png"
    save_confusion_matrix(path, np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]]), "validation")
    image = _png(path)
    assert image.shape[:2] == (round((0.8 + 1.5) * 90), round((1.0 + 1.5) * 90))
    assert _not_blank(image)


def test_confusion_matrix_note_for_a_non_classifier(tmp_path):
    path = tmp_path / "confusion.png"
    save_confusion_matrix(path, None, "test")
    image = _png(path)
    assert image.shape[:2] == (round(1.5 * 90), (4 * 90))
    assert _not_blank(image)  # the note's text


def test_histogram_of_finite_values(tmp_path):
    values = np.concatenate([np.random.default_rng(0).normal(size=200), [np.nan, np.inf]])
    path = tmp_path / "hist.png"
    save_histogram(path, values, "abs error")
    image = _png(path)
    assert image.shape[:2] == (round(3.2 * 90), round(4.5 * 90))
    assert _not_blank(image)
