"""Loading the cohort: one PNG scan and one row of clinical.csv per patient."""

import pathlib

import pandas as pd
import tensorflow as tf

from aimed import DataLoaderBase

#: Clinical columns fed to the model, in this order (sex is encoded F=0, M=1).
CLINICAL_COLUMNS = ["age", "sex", "crp", "wbc", "hb", "lactate"]


class CohortLoader(DataLoaderBase):
    """tf.data loader: x = {"scan": uint8 (H, W, 1), "clinical": float32 (6,)}, y = diagnosis."""

    def __init__(self, config, data_dir):
        super().__init__(config, data_dir)

        self.train_data_dir = self.data_dir.joinpath('train')
        self.val_data_dir = self.data_dir.joinpath('validation')
        self.test_data_dir = self.data_dir.joinpath('test')

    @staticmethod
    def _read_cohort_df(split_dir: pathlib.Path):
        df = pd.read_csv(split_dir.joinpath('clinical.csv'), dtype={'patient_id': str})
        df['path'] = df['scan_file'].map(lambda f: str(split_dir.joinpath(f)))
        return df

    def _inputs(self, df):
        scans = tf.data.Dataset.from_tensor_slices(df['path'].values).map(self._read_scan_tf)
        clinical = df[CLINICAL_COLUMNS].copy()
        clinical['sex'] = (clinical['sex'] == 'M').astype('float32')
        clinical = tf.data.Dataset.from_tensor_slices(clinical.to_numpy(dtype='float32'))
        return tf.data.Dataset.zip({'scan': scans, 'clinical': clinical})

    def create_training_generator(self):
        df = self._read_cohort_df(self.train_data_dir)
        n_data = len(df)

        labels = tf.data.Dataset.from_tensor_slices(df['diagnosis'].values)
        weights = tf.data.Dataset.from_tensor_slices(tf.ones(n_data))

        train_ds = tf.data.Dataset.zip((self._inputs(df), labels, weights))
        if self.shuffle:
            train_ds = train_ds.shuffle(n_data)

        return train_ds, n_data

    def create_validation_generator(self):
        df = self._read_cohort_df(self.val_data_dir)
        n_data = len(df)

        labels = tf.data.Dataset.from_tensor_slices(df['diagnosis'].values)
        weights = tf.data.Dataset.from_tensor_slices(tf.ones(n_data))

        ds = tf.data.Dataset.zip((self._inputs(df), labels, weights))

        return ds, n_data

    def create_test_generator(self):
        df = self._read_cohort_df(self.test_data_dir)
        n_data = len(df)

        labels = tf.data.Dataset.from_tensor_slices(df['diagnosis'].values)
        data_ids = tf.data.Dataset.from_tensor_slices(df['patient_id'].values)

        ds = tf.data.Dataset.zip((self._inputs(df), labels, data_ids))

        return ds, n_data

    def get_validation_index(self):
        return self._read_cohort_df(self.val_data_dir)['patient_id'].values

    def get_metadata(self, split):
        split_dir = self.val_data_dir if split == 'validation' else self.test_data_dir
        df = self._read_cohort_df(split_dir)
        meta = pd.DataFrame({
            'sex': df['sex'].values,
            'age_band': pd.cut(df['age'], [0, 50, 65, 200], labels=['<50', '50-64', '65+']).astype(str).values,
        }, index=df['patient_id'].values)
        return meta

    def _load_params(self, config):
        self.shuffle = config.data_loader.shuffle

    def _set_defaults(self):
        self.shuffle = True

    @staticmethod
    def _read_scan_tf(path):
        return tf.io.decode_png(tf.io.read_file(path), channels=1)
