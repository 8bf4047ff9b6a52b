"""Loads the toy shapes dataset (PNG files + labels.csv) as plain python generators."""
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from aimed import DataLoaderBase

SPLIT_NAMES = {"train": "train", "validation": "val", "test": "test"}


class ShapesLoader(DataLoaderBase):

    def _set_defaults(self):
        self.classes = ["ring", "bar", "cross"]
        self.labels_file = "labels.csv"
        self._table = None
        self._pixels = {}

    def _load_params(self, config):
        self.classes = list(config.data_loader.get("classes", self.classes))
        self.labels_file = config.data_loader.get("labels_file", self.labels_file)

    # -- helpers -------------------------------------------------------------

    @property
    def table(self):
        if self._table is None:
            table = pd.read_csv(Path(self.data_dir) / self.labels_file, dtype=str)
            unknown = set(table.label) - set(self.classes)
            if unknown:
                raise ValueError(f"labels.csv has labels not in data_loader.classes: {sorted(unknown)}")
            table["class_index"] = table.label.map(self.classes.index)
            self._table = table
        return self._table

    def _rows(self, split):
        return self.table[self.table.split == SPLIT_NAMES[split]].reset_index(drop=True)

    def _image(self, image_id):
        if image_id not in self._pixels:
            with Image.open(Path(self.data_dir) / "images" / image_id) as im:
                self._pixels[image_id] = np.array(im.convert("L"), dtype=np.uint8)
        return self._pixels[image_id]

    def _generate(self, rows, last, shuffle=False):
        order = np.random.permutation(len(rows)) if shuffle else range(len(rows))
        for i in order:
            image_id = rows.image_id[i]
            third = image_id if last == "id" else 1.0
            yield self._image(image_id), int(rows.class_index[i]), third

    # -- DataLoaderBase --------------------------------------------------------

    def create_training_generator(self):
        rows = self._rows("train")
        return self._generate(rows, "weight", shuffle=True), len(rows)

    def create_validation_generator(self):
        rows = self._rows("validation")
        return self._generate(rows, "weight"), len(rows)

    def create_test_generator(self):
        rows = self._rows("test")
        return self._generate(rows, "id"), len(rows)

    def get_validation_index(self):
        return self._rows("validation").image_id.tolist()

    def get_metadata(self, split):
        rows = self._rows(split)
        return rows.set_index("image_id")[["label", "class_index"]]
