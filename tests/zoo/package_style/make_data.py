"""Write the synthetic seven-segment digit set used by the package-style project.

    python make_data.py OUT_DIR

Each split is one ``.npz`` file holding ``images`` (N, 12, 12) uint8,
``labels`` (N,) int64 and ``ids`` (N,) str.
"""
import pathlib
import sys

import numpy as np

SIZE = 12
SPLITS = {"train": 60, "val": 26, "test": 22}

# Seven-segment layout inside a 10 x 6 box (rows 1..10, cols 3..8).
SEGMENTS = {
    "a": (slice(1, 2), slice(3, 9)),
    "b": (slice(1, 6), slice(8, 9)),
    "c": (slice(5, 11), slice(8, 9)),
    "d": (slice(10, 11), slice(3, 9)),
    "e": (slice(5, 11), slice(3, 4)),
    "f": (slice(1, 6), slice(3, 4)),
    "g": (slice(5, 6), slice(3, 9)),
}
DIGITS = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"]


def glyph(digit, rng):
    canvas = np.zeros((SIZE, SIZE), np.float32)
    segments = list(DIGITS[digit])
    if len(segments) > 3 and rng.random() < 0.1:
        segments.remove(rng.choice(segments))
    for name in segments:
        canvas[SEGMENTS[name]] = rng.uniform(0.65, 1.0)
    canvas = np.roll(canvas, (rng.integers(-1, 2), rng.integers(-2, 3)), axis=(0, 1))
    padded = np.pad(canvas, 1)
    blurred = sum(padded[i:i + SIZE, j:j + SIZE] for i in range(3) for j in range(3)) / 9.0
    canvas = 0.6 * canvas + 0.4 * blurred + rng.normal(0.0, 0.08, canvas.shape)
    return (np.clip(canvas, 0.0, 1.0) * 255).round().astype(np.uint8)


def main(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    for split, n in SPLITS.items():
        labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
        images = np.stack([glyph(int(d), rng) for d in labels])
        ids = np.array([f"{split}-{i:04d}" for i in range(n)])
        np.savez(out / f"{split}.npz", images=images, labels=labels, ids=ids)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python make_data.py OUT_DIR")
    main(sys.argv[1])
