import numpy as np
import pandas as pd

from aimed import DataLoaderBase

from .io import read_case, read_case_table


class CaseLoader(DataLoaderBase):
    """Yields (image, {"mask": mask, "grade": grade}, weight) per case.

    weight is {"mask": per-pixel weight (H, W), "grade": 1.0}: lesion pixels count
    `lesion_weight` times in the segmentation loss, the grading head is unweighted.
    """

    def __init__(self, config, data_dir):
        super().__init__(config, data_dir)
        self.train_dir = self.data_dir / "train"
        self.val_dir = self.data_dir / "validation"
        self.test_dir = self.data_dir / "test"

    def _set_defaults(self):
        self.shuffle = True
        self.flip = True
        self.lesion_weight = 3.0

    def _load_params(self, config):
        dl = config.data_loader
        self.shuffle = dl.shuffle
        self.flip = dl.flip
        self.lesion_weight = dl.lesion_weight

    # ---- splits
    def create_training_generator(self):
        table = read_case_table(self.train_dir)
        return self._gen(table, self.shuffle, self.flip), len(table.ids)

    def create_validation_generator(self):
        table = read_case_table(self.val_dir)
        return self._gen(table, False, False), len(table.ids)

    def create_test_generator(self):
        table = read_case_table(self.test_dir)
        return self._test_gen(table), len(table.ids)

    def get_validation_index(self):
        return read_case_table(self.val_dir).ids

    def get_metadata(self, split):
        folder = {"train": self.train_dir, "training": self.train_dir,
                  "validation": self.val_dir, "test": self.test_dir}[split]
        table = read_case_table(folder)
        return pd.DataFrame({"site": table.sites, "grade_true": table.grades},
                            index=pd.Index(table.ids, name="case_id"))

    # ---- generators
    def _pixel_weight(self, mask):
        return np.where(mask > 0, self.lesion_weight, 1.0)

    def _gen(self, table, shuffle, flip):
        idx = np.arange(len(table.ids))
        while True:
            if shuffle:
                np.random.shuffle(idx)
            for i in idx:
                image, mask = read_case(table.folder, table.ids[i])
                if flip and np.random.rand() < 0.5:
                    image, mask = image[:, ::-1], mask[:, ::-1]
                label = {"mask": mask, "grade": table.grades[i]}
                weight = {"mask": self._pixel_weight(mask), "grade": 1.0}
                yield image, label, weight

    def _test_gen(self, table):
        for case_id, grade in zip(table.ids, table.grades):
            image, mask = read_case(table.folder, case_id)
            yield image, {"mask": mask, "grade": grade}, case_id
