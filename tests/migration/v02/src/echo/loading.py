import numpy as np
import pandas as pd
import tensorflow as tf

from abstractions.data_loading import DataLoaderBase


class EchoLoader(DataLoaderBase):
    """Reads the echo frames listed in ``index.csv``.

    train/validation points: ``(image uint8 (H, W, 1), mask float32 (H, W, 1), weight float32 (H, W))``
    test points: ``(image, mask, case_id int64)``

    The weight map is ``1 + boundary_weight * boundary``, boundary being the cavity's border pixels.
    """

    def __init__(self, config):
        super().__init__(config)

        self.index_path = self.data_dir.joinpath(self.index_file)

    def create_training_generator(self):
        df = self._read_index('train')
        n_data = len(df)

        ds = self._weighted_dataset(df)
        if self.shuffle:
            ds = ds.shuffle(n_data, seed=self.seed, reshuffle_each_iteration=True)

        return ds, n_data

    def create_validation_generator(self):
        df = self._read_index('validation')
        n_data = len(df)

        ds = self._weighted_dataset(df)

        return ds, n_data

    def create_test_generator(self):
        df = self._read_index('test')
        n_data = len(df)

        paths = tf.data.Dataset.from_tensor_slices((df['image_path'].values, df['mask_path'].values))
        images_masks = paths.map(self._read_pair_tf)
        case_ids = tf.data.Dataset.from_tensor_slices(df['case_id'].values)

        ds = tf.data.Dataset.zip((images_masks, case_ids)).map(lambda im_mask, case_id: (im_mask[0], im_mask[1], case_id))

        return ds, n_data

    def get_validation_index(self):
        return self._read_index('validation')['case_id'].values

    def _read_index(self, split):
        df = pd.read_csv(self.index_path)
        df = df[df['split'] == split].reset_index(drop=True)
        df['image_path'] = df['image'].apply(lambda p: str(self.data_dir.joinpath(p)))
        df['mask_path'] = df['mask'].apply(lambda p: str(self.data_dir.joinpath(p)))
        return df

    def _weighted_dataset(self, df):
        paths = tf.data.Dataset.from_tensor_slices((df['image_path'].values, df['mask_path'].values))
        return paths.map(self._read_weighted_tf)

    def _read_pair_tf(self, image_path, mask_path):
        image, mask = tf.numpy_function(self._read_pair, [image_path, mask_path], [tf.uint8, tf.float32])
        image = tf.ensure_shape(image, (self.input_h, self.input_w, 1))
        mask = tf.ensure_shape(mask, (self.input_h, self.input_w, 1))
        return image, mask

    def _read_weighted_tf(self, image_path, mask_path):
        image, mask = self._read_pair_tf(image_path, mask_path)
        weight = tf.numpy_function(self._weight_map, [mask], tf.float32)
        weight = tf.ensure_shape(weight, (self.input_h, self.input_w))
        return image, mask, weight

    @staticmethod
    def _read_pair(image_path, mask_path):
        image = np.load(image_path.decode())[..., np.newaxis].astype(np.uint8)
        mask = np.load(mask_path.decode())[..., np.newaxis].astype(np.float32)
        return image, mask

    def _weight_map(self, mask):
        m = mask[..., 0] > 0.5
        padded = np.pad(m, 1, mode='edge')
        eroded = (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
                  & padded[1:-1, :-2] & padded[1:-1, 2:])
        boundary = m & ~eroded
        return (1.0 + self.boundary_weight * boundary).astype(np.float32)

    def _load_params(self, config):
        self.shuffle = config.data_loader.shuffle
        self.seed = config.data_loader.seed
        self.boundary_weight = config.data_loader.boundary_weight
        self.index_file = config.data_loader.index_file
        self.input_h = config.input_height
        self.input_w = config.input_width

    def _set_defaults(self):
        self.shuffle = True
        self.seed = 42
        self.boundary_weight = 4.0
        self.index_file = 'index.csv'
        self.input_h = 32
        self.input_w = 32
