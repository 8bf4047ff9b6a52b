"""Write the MNIST sample as the tutorial's dataset: <out>/<split>/image_<i>.jpg and labels.csv.

    python workflow/scripts/prepare_mnist.py --sample data/mnist_sample.npz --out datasets/mnist

The dataset is built in a temporary folder beside --out and renamed into place at the end, so an
interrupted run never leaves a half-written dataset; an existing --out is replaced. The output is
byte-for-byte the same on every run.
"""

import argparse
import os
import pathlib
import shutil
import signal
import sys

import numpy as np
import pandas as pd
from PIL import Image

SPLITS = ("train", "validation", "test")


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=pathlib.Path, required=True,
                        help="npz with <split>_x (uint8 N x 28 x 28) and <split>_y (uint8 N) for each split")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="dataset folder to (re)create")
    for split in SPLITS:
        parser.add_argument(f"--limit-{split}", type=positive_int, metavar="N",
                            help=f"keep only the first N {split} images (for small test datasets)")
    args = parser.parse_args(argv)
    if not args.sample.is_file():
        parser.error(f"--sample {args.sample} is not a file; see data/README.md for how to regenerate it")
    return args


def write_split(images, labels, img_dir):
    img_dir.mkdir()
    names = [f"image_{i}.jpg" for i in range(len(images))]
    for name, img in zip(names, images):
        Image.fromarray(img).save(img_dir / name, quality=95)
    pd.DataFrame({"image name": names, "label": labels}).to_csv(img_dir / "labels.csv")


def main(argv=None):
    args = parse_args(argv)
    # Turn SIGTERM (how Snakemake stops a job) into SystemExit, so the temporary folder is removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    old = out.with_name(f".{out.name}.old-{os.getpid()}")

    try:
        tmp.mkdir()
        with np.load(args.sample) as sample:
            for split in SPLITS:
                limit = getattr(args, f"limit_{split}")
                write_split(sample[f"{split}_x"][:limit], sample[f"{split}_y"][:limit], tmp / split)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
