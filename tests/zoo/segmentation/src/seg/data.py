import numpy as np
import tensorflow as tf

from aimed import DataLoaderBase

from . import caseio
from .weightmaps import boundary_weight_map


class PhantomCases(DataLoaderBase):
    """One element per case: (int16 slice, uint8 mask, float32 weight map | case number)."""

    def _set_defaults(self):
        self.height = self.width = 32
        self.foreground_weight = 1.0
        self.border_weight = 1.0
        self.border_width = 1
        self.manifest = caseio.read_manifest(self.data_dir)

    def _load_params(self, config):
        self.height, self.width = int(config.input_height), int(config.input_width)
        p = config.data_loader
        self.foreground_weight = float(p.get("foreground_weight", self.foreground_weight))
        self.border_weight = float(p.get("border_weight", self.border_weight))
        self.border_width = int(p.get("border_width", self.border_width))

    def _signature(self, last):
        hw = (self.height, self.width)
        return (tf.TensorSpec(hw, tf.int16), tf.TensorSpec(hw, tf.uint8), last)

    def _weighted_cases(self, split):
        ids = caseio.case_ids(self.manifest, split)

        def gen():
            for cid in ids:
                image, mask = caseio.read_case(self.data_dir, cid)
                weights = boundary_weight_map(
                    mask, self.foreground_weight, self.border_weight, self.border_width
                )
                yield image, mask, weights

        spec = self._signature(tf.TensorSpec((self.height, self.width), tf.float32))
        return tf.data.Dataset.from_generator(gen, output_signature=spec), len(ids)

    def create_training_generator(self):
        ds, n = self._weighted_cases("train")
        return ds.shuffle(n, reshuffle_each_iteration=True), n

    def create_validation_generator(self):
        return self._weighted_cases("validation")

    def create_test_generator(self):
        ids = caseio.case_ids(self.manifest, "test")

        def gen():
            for cid in ids:
                image, mask = caseio.read_case(self.data_dir, cid)
                yield image, mask, np.int64(cid)

        spec = self._signature(tf.TensorSpec((), tf.int64))
        return tf.data.Dataset.from_generator(gen, output_signature=spec), len(ids)

    def get_validation_index(self):
        return [int(c) for c in caseio.case_ids(self.manifest, "validation")]

    def get_metadata(self, split):
        table = self.manifest.loc[caseio.case_ids(self.manifest, split), ["kind", "n_lesions"]].copy()
        table["lesion_fraction"] = [
            float(caseio.read_case(self.data_dir, cid)[1].mean()) for cid in table.index
        ]
        return table
