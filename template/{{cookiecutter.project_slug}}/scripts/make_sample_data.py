"""Write a small synthetic image dataset in the tutorial layout, so the pipeline runs out of the box.

Class ``k`` is a bright square in the k-th cell of a grid over the image, on noise; a model
learns it in a few epochs. Rule prepare_data runs this script (``datasets.mnist`` in
config/config.yaml); replace it there with your real data. The images have the project's input
shape by default. The output is written to a temp folder and renamed into place.

    python scripts/make_sample_data.py --out datasets/sample [--limit-train 300]
"""

import argparse
import math
import pathlib
import shutil
import tempfile

import numpy as np
import pandas as pd
from PIL import Image

SPLIT_SIZES = {"train": 300, "validation": 100, "test": 100}


def synthetic_image(label: int, classes: int, height: int, width: int, channels: int,
                    rng: np.random.Generator) -> np.ndarray:
    """One uint8 image of shape (height, width, channels) showing class ``label``."""
    grid = math.ceil(math.sqrt(classes))
    cell_h, cell_w = height // grid, width // grid
    row, col = divmod(label, grid)
    image = rng.normal(40, 20, size=(height, width, channels))
    image[row * cell_h:(row + 1) * cell_h, col * cell_w:(col + 1) * cell_w] += 160
    return np.clip(image, 0, 255).astype(np.uint8)


def write_split(folder: pathlib.Path, n: int, args: argparse.Namespace, rng: np.random.Generator) -> None:
    """``n`` images of ``folder``, the classes in turn, and their labels.csv."""
    folder.mkdir(parents=True)
    names, labels = [], []
    for index in range(n):
        label = index % args.classes
        image = synthetic_image(label, args.classes, args.height, args.width, args.channels, rng)
        name = f"image_{index}.png"
        Image.fromarray(image[..., 0] if args.channels == 1 else image).save(folder / name)
        names.append(name)
        labels.append(label)
    pd.DataFrame({"image name": names, "label": labels}).to_csv(folder / "labels.csv")


def main(argv: "list[str] | None" = None) -> None:
    """Parse the arguments and write the dataset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="dataset folder to write")
    parser.add_argument("--height", type=int, default={{ cookiecutter.input_height }})
    parser.add_argument("--width", type=int, default={{ cookiecutter.input_width }})
    parser.add_argument("--channels", type=int, choices=(1, 3), default={{ cookiecutter.channels }})
    parser.add_argument("--classes", type=int, default={{ cookiecutter.n_classes }})
    parser.add_argument("--seed", type=int, default=0)
    for split, size in SPLIT_SIZES.items():
        parser.add_argument(f"--limit-{split}", type=int, default=size, help=f"images in {split} (default {size})")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=args.out.parent, prefix=f".{args.out.name}."))
    try:
        for split in SPLIT_SIZES:
            write_split(tmp / split, getattr(args, f"limit_{split}"), args, rng)
        if args.out.exists():
            shutil.rmtree(args.out)
        tmp.rename(args.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
