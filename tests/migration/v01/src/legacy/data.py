import pathlib

import numpy as np
import pandas as pd
from PIL import Image

from abstractions import DataLoaderBase, ModelBuilderBase
from abstractions.utils import ConfigStruct, load_config_file


class MnistLikeLoader(DataLoaderBase):
    """Reads ``{train, validation, test}/labels.csv`` + 16x16 grayscale pngs.

    train/validation generators yield ``(image, label, 1)`` forever, test generator yields
    ``(image, label, image_name)`` once over the test set.
    """

    def __init__(self, config, data_dir):
        super().__init__(config, data_dir)

        self.train_data_dir = self.data_dir.joinpath('train')
        self.val_data_dir = self.data_dir.joinpath('validation')
        self.test_data_dir = self.data_dir.joinpath('test')

    def create_training_generator(self):
        labels_df = self._read_labels_df(self.train_data_dir)
        n_data = len(labels_df)

        gen = self._generator(labels_df['path'], labels_df['label'], self.shuffle)
        return gen, n_data

    def create_validation_generator(self):
        labels_df = self._read_labels_df(self.val_data_dir)
        n_data = len(labels_df)

        gen = self._generator(labels_df['path'], labels_df['label'], False)
        return gen, n_data

    def create_test_generator(self):
        labels_df = self._read_labels_df(self.test_data_dir)
        n_data = len(labels_df)

        gen = self._test_gen(labels_df['path'], labels_df['label'], labels_df['image name'])
        return gen, n_data

    def get_validation_index(self):
        """Patient/case ids, in the same order as the validation generator.

        ``val_p11_s1.png`` and ``val_p11_s2.png`` are two scans of the same patient, so both rows
        get the id ``val_p11`` -- reports are grouped per patient downstream.
        """

        names = self._read_labels_df(self.val_data_dir)['image name']
        return names.str.replace(r'_s\d+\.png$', '', regex=True).values

    @staticmethod
    def _read_labels_df(data_dir: pathlib.Path):
        labels_df = pd.read_csv(data_dir.joinpath('labels.csv'))
        labels_df['path'] = labels_df.apply(lambda x: str(data_dir.joinpath(x['image name'])), axis=1)
        return labels_df

    def _load_params(self, config: ConfigStruct):
        self.shuffle = config.data_loader.shuffle

    def _set_defaults(self):
        self.shuffle = True

    @staticmethod
    def _read_image(path):
        """returns uint8 (16, 16)"""
        with Image.open(path) as img:
            return np.array(img.convert('L'))

    def _generator(self, image_paths, label_array, shuffle):
        indxs = np.arange(len(image_paths))
        while True:
            if shuffle:
                np.random.shuffle(indxs)
            for ind in indxs:
                image = self._read_image(image_paths[ind])
                yield image, label_array[ind], 1

    def _test_gen(self, image_paths, label_array, data_ids):
        for img_path, label, data_id in zip(image_paths, label_array, data_ids):
            image = self._read_image(img_path)
            yield image, label, data_id


if __name__ == '__main__':
    # Local dry-run of what the orchestrator does with our classes:
    #   python src/legacy/data.py          (after: python make_data.py datasets/legacy_v01)
    import sys
    from pydoc import locate

    project_root = pathlib.Path(__file__).absolute().parents[2]
    config = load_config_file(project_root.joinpath('runs', 'legacy-v01', 'config.yaml'))
    sys.path.append(str(project_root.joinpath(config.src_code_path)))

    data_loader = locate(config.data_loader_class)(config, project_root.joinpath(config.data_dir))
    assert isinstance(data_loader, DataLoaderBase)
    model_builder = locate(config.model_builder_class)(config)
    assert isinstance(model_builder, ModelBuilderBase)

    train_gen, train_n = data_loader.create_training_generator()
    image, label, sample_weight = next(train_gen)
    print(f'train: {train_n} images, first one {image.shape} {image.dtype}, label {label}, weight {sample_weight}')

    test_gen, test_n = data_loader.create_test_generator()
    image, label, data_id = next(test_gen)
    print(f'test: {test_n} images, first id {data_id}, label {label}')

    print(f'validation index: {list(data_loader.get_validation_index())}')
    model_builder.get_compiled_model().summary()
