"""The ``distribution:`` config section as a ``tf.distribute`` strategy."""

from __future__ import annotations

import json
import os
from typing import Any

from aimed.errors import ConfigError


def make_strategy(section: Any, source: str) -> Any:
    """Build the strategy named by ``distribution.strategy``; must run before TensorFlow initialises devices."""
    import tensorflow as tf

    if section.logical_cpus:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(section.logical_cpus)]
        )
    if section.strategy == "default":
        return tf.distribute.get_strategy()
    if section.strategy == "mirrored":
        devices = section.devices or [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")]
        try:
            return tf.distribute.MirroredStrategy(devices=list(devices))
        except (ValueError, RuntimeError) as exc:
            available = ", ".join(d.name for d in tf.config.list_logical_devices())
            raise ConfigError(
                f"{source}: key 'distribution.devices' is {list(devices)}, which MirroredStrategy rejects ({exc}). "
                f"This machine has {available}; fix the list, or set distribution.logical_cpus to split the CPU."
            ) from None
    if "SLURM_JOB_ID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver()
    elif "TF_CONFIG" in os.environ:
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as exc:
            raise ConfigError(f"the environment variable TF_CONFIG is not valid JSON ({exc}); fix or unset it.") from None
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    else:
        raise ConfigError(
            f"{source}: key 'distribution.strategy' is multi_worker, but neither SLURM (SLURM_JOB_ID with "
            f"SLURM_NTASKS > 1) nor TF_CONFIG describes the workers. Launch with srun --ntasks N, or set TF_CONFIG."
        )
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def is_chief(strategy: Any) -> bool:
    """Whether this process writes checkpoints and results (always, except non-chief workers)."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))
