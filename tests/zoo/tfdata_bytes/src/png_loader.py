from pathlib import Path

import pandas as pd
import tensorflow as tf

from aimed import DataLoaderBase
from decoding import read_png

AUTOTUNE = tf.data.AUTOTUNE
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "validation": "val",
    "test": "test",
}


class PngTileLoader(DataLoaderBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.labels_file = "labels.csv"
        self.channels = 3
        self.seed = None
        self.height = self.width = 16

    def _load_params(self, config):
        super()._load_params(config)
        params = config.data_loader
        self.labels_file = params.get("labels_file", self.labels_file)
        self.channels = params.get("channels", self.channels)
        self.seed = config.get("seed")
        self.height, self.width = config.input_height, config.input_width
        self._table = pd.read_csv(Path(self.data_dir) / self.labels_file, dtype={"id": str})

    def _rows(self, split: str) -> pd.DataFrame:
        return self._table[self._table["split"] == SPLIT_NAMES[split]].reset_index(drop=True)

    def _decode(self, path):
        return read_png(path, self.height, self.width, self.channels)

    def _slices(self, split: str):
        rows = self._rows(split)
        paths = [str(Path(self.data_dir) / p) for p in rows["path"]]
        labels = rows["label"].to_numpy("int64")
        return rows, tf.data.Dataset.from_tensor_slices((paths, labels))

    def create_training_generator(self):
        rows, ds = self._slices("training")
        ds = ds.shuffle(len(rows), seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda p, y: (self._decode(p), y, 1.0), num_parallel_calls=AUTOTUNE)
        return ds, len(rows)

    def create_validation_generator(self):
        rows, ds = self._slices("validation")
        ds = ds.map(lambda p, y: (self._decode(p), y, 1.0), num_parallel_calls=AUTOTUNE)
        return ds, len(rows)

    def create_test_generator(self):
        rows, ds = self._slices("test")
        ids = tf.data.Dataset.from_tensor_slices(tf.constant(rows["id"].tolist(), dtype=tf.string))
        ds = tf.data.Dataset.zip((ds, ids))
        ds = ds.map(lambda path_label, image_id: (self._decode(path_label[0]), path_label[1], image_id))
        return ds, len(rows)

    def get_validation_index(self):
        return self._rows("validation")["id"].tolist()

    def get_metadata(self, split: str) -> pd.DataFrame:
        return self._rows(split).set_index("id")[["source", "label"]]
