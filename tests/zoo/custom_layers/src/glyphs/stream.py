from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aimed import DataLoaderBase


@dataclass(frozen=True)
class Split:
    ids: list[str]
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


class GlyphStream(DataLoaderBase):
    """Endless generators over glyphs.npy / index.csv.

    Every generator cycles forever; the training one reshuffles on each pass.
    """

    def _set_defaults(self) -> None:
        super()._set_defaults()
        self.index_name = "index.csv"
        self.array_name = "glyphs.npy"
        self.seed = 0
        self._cache: dict[str, Split] = {}

    def _load_params(self, config) -> None:
        super()._load_params(config)
        params = config.data_loader
        self.index_name = params.get("index", self.index_name)
        self.array_name = params.get("images", self.array_name)
        self.seed = config.get("seed") or self.seed

    def _split(self, name: str) -> Split:
        if name not in self._cache:
            index = pd.read_csv(self.data_dir / self.index_name, dtype={"id": str})
            rows = index[index["split"] == name]
            images = np.load(self.data_dir / self.array_name, mmap_mode="r")
            self._cache[name] = Split(
                ids=rows["id"].tolist(),
                images=np.asarray(images[rows["row"].to_numpy()]),
                labels=rows["label"].to_numpy(dtype=np.int64),
            )
        return self._cache[name]

    def _cycle(self, split: Split, shuffle: bool, with_ids: bool):
        rng = np.random.default_rng(self.seed)
        for _ in itertools.count():
            order = rng.permutation(len(split)) if shuffle else np.arange(len(split))
            for i in order:
                third = split.ids[i] if with_ids else 1.0
                yield split.images[i], split.labels[i], third

    def create_training_generator(self):
        split = self._split("train")
        return self._cycle(split, shuffle=True, with_ids=False), len(split)

    def create_validation_generator(self):
        split = self._split("validation")
        return self._cycle(split, shuffle=False, with_ids=False), len(split)

    def create_test_generator(self):
        split = self._split("test")
        return self._cycle(split, shuffle=False, with_ids=True), len(split)

    def get_validation_index(self) -> list[str]:
        return list(self._split("validation").ids)
