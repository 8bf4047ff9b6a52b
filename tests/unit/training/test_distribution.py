"""aimed.training.distribution: the ``distribution:`` section as a tf.distribute strategy.

TensorFlow's logical device configuration can be set only once per process, so no test here
sets ``logical_cpus``.
"""

from __future__ import annotations

import types

import pytest

from aimed.config import ConfigStruct
from aimed.errors import ConfigError
from aimed.training.distribution import is_chief, make_strategy

tf = pytest.importorskip("tensorflow")

SOURCE = "runs/demo/config.yaml"
ENV_KEYS = ("SLURM_JOB_ID", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_STEP_TASKS_PER_NODE", "TF_CONFIG")


def _section(**values):
    return ConfigStruct({"strategy": "default", "devices": None, "logical_cpus": None, **values}, SOURCE)


@pytest.fixture
def no_cluster(monkeypatch):
    """No SLURM job and no TF_CONFIG in the environment."""
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_default_strategy_is_tensorflows_default():
    strategy = make_strategy(_section(), SOURCE)
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert is_chief(strategy) is True


def test_mirrored_on_the_cpu():
    strategy = make_strategy(_section(strategy="mirrored", devices=["/cpu:0"]), SOURCE)
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 1
    assert is_chief(strategy) is True


def test_mirrored_accepts_other_spellings_of_a_device():
    strategy = make_strategy(_section(strategy="mirrored", devices=["/device:CPU:0"]), SOURCE)
    assert strategy.num_replicas_in_sync == 1


@pytest.mark.parametrize("devices", [["/gpu:7"], ["/cpu:0", "/cpu:5"]])
def test_mirrored_with_devices_that_do_not_exist_is_a_config_error(devices):
    with pytest.raises(ConfigError) as info:
        make_strategy(_section(strategy="mirrored", devices=devices), SOURCE)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert message.startswith(f"{SOURCE}: key 'distribution.devices'")
    assert devices[-1] in message and "not on this machine" in message
    assert "CPU:0" in message  # what the machine has


def test_multi_worker_without_slurm_or_tf_config_is_a_config_error(no_cluster):
    with pytest.raises(ConfigError, match="neither SLURM .* nor TF_CONFIG") as info:
        make_strategy(_section(strategy="multi_worker"), SOURCE)
    assert str(info.value).startswith(f"{SOURCE}: key 'distribution.strategy' is multi_worker")


def test_multi_worker_in_a_slurm_batch_script_asks_for_srun(no_cluster):
    no_cluster.setenv("SLURM_JOB_ID", "123")
    no_cluster.setenv("SLURM_NTASKS", "4")  # the batch script, not a job step of several tasks
    with pytest.raises(ConfigError, match="with 4 tasks, which runs once.*srun aimed train"):
        make_strategy(_section(strategy="multi_worker"), SOURCE)


def test_multi_worker_with_invalid_tf_config_is_a_config_error(no_cluster):
    no_cluster.setenv("TF_CONFIG", "{'cluster': not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        make_strategy(_section(strategy="multi_worker"), SOURCE)


def test_is_chief_follows_should_checkpoint():
    def fake(**extended):
        return types.SimpleNamespace(extended=types.SimpleNamespace(**extended))

    assert is_chief(fake(should_checkpoint=False)) is False
    assert is_chief(fake(should_checkpoint=True)) is True
    assert is_chief(fake()) is True  # a strategy without the attribute: a single process
