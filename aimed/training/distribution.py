"""The ``distribution:`` config section as a ``tf.distribute`` strategy."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from typing import Any

from aimed.errors import ConfigError

log = logging.getLogger(__name__)


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
        available = [d.name for d in tf.config.list_logical_devices()]
        # MirroredStrategy accepts a device that does not exist and then places its work elsewhere.
        known = {_device_key(tf, name) for name in available}
        problem = None
        try:
            missing = [d for d in devices if _device_key(tf, d) not in known]
            if missing:
                problem = f"{', '.join(map(str, missing))} not on this machine"
            else:
                return tf.distribute.MirroredStrategy(devices=list(devices))
        except (ValueError, RuntimeError) as exc:
            problem = str(exc)
        raise ConfigError(
            f"{source}: key 'distribution.devices' is {list(devices)}, which MirroredStrategy cannot use ({problem}). "
            f"This machine has {', '.join(available)}; fix the list, or set distribution.logical_cpus to split the CPU."
        )
    if "SLURM_JOB_ID" in os.environ and int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1:
        resolver = _slurm_resolver(tf)
    elif "TF_CONFIG" in os.environ:
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as exc:
            raise ConfigError(f"the environment variable TF_CONFIG is not valid JSON ({exc}); fix or unset it.") from None
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        raise ConfigError(
            f"{source}: key 'distribution.strategy' is multi_worker, and this is the batch script of a SLURM job "
            f"with {os.environ['SLURM_NTASKS']} tasks, which runs once. Start the training with srun (srun aimed "
            f"train RUN) so that every task runs a worker."
        )
    else:
        raise ConfigError(
            f"{source}: key 'distribution.strategy' is multi_worker, but neither SLURM (a job step of several "
            f"tasks) nor TF_CONFIG describes the workers. Launch with srun --ntasks N, or set TF_CONFIG."
        )
    _warn_wildcard_listener(resolver)
    _fix_keras_multi_worker_logs()
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def _warn_wildcard_listener(resolver: Any) -> None:
    """Say that this worker's TensorFlow server listens on every interface, whatever host the cluster names.

    TensorFlow's gRPC server (GrpcServer::Init in tensorflow/core/distributed_runtime/rpc/
    grpc_server_lib.cc, as built into TF 2.21's libtensorflow_cc.so.2) listens on
    ``"0.0.0.0:" + port``: only the port comes from the cluster spec (or ServerDef.port), and no
    ServerDef field, ConfigProto option, environment variable or ``tf.distribute.Server``
    argument changes the host; gRPC then listens on [::] and 0.0.0.0. The coordination service
    shares that server. aimed cannot bind it more narrowly without patching TensorFlow, so it says
    so rather than let users believe the host in TF_CONFIG (e.g. 127.0.0.1) limits who can connect.
    """
    try:
        address = resolver.cluster_spec().task_address(resolver.task_type, resolver.task_id)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return  # MultiWorkerMirroredStrategy reports a bad cluster itself.
    host, _, port = address.rpartition(":")
    if host.strip("[]") not in ("", "0.0.0.0", "::"):
        log.warning("TensorFlow's server for this worker (%s in the cluster spec) listens on port %s of every "
                    "network interface, not only on %s: TensorFlow has no setting for its address. Anyone who "
                    "can reach this machine can connect to it; block the port with a firewall where the network "
                    "is not trusted.", address, port, host)


def _slurm_resolver(tf: Any) -> Any:
    """The workers of this SLURM job step (one per task), as a cluster resolver.

    TensorFlow's SlurmClusterResolver splits each node's GPUs among the node's tasks; it calls
    nvidia-smi and fails where a task's share is zero GPUs, so there the same workers and ports
    are passed on without GPUs. The first port is derived from the job id, so that two jobs
    sharing a node do not both take TensorFlow's default port 8888.
    """
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import expand_tasks_per_node

    port_base = 20000 + int(os.environ["SLURM_JOB_ID"]) % 4000 * 10
    tasks_per_node = max(expand_tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"]))
    gpus = _node_gpus()
    if gpus >= tasks_per_node:
        return tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port_base, gpus_per_node=gpus)
    if gpus:
        log.warning("this node has %d GPU(s) for %d tasks; the workers run on the CPU. Give each node at least "
                    "as many GPUs as tasks (sbatch --gpus-per-node).", gpus, tasks_per_node)
    slurm = tf.distribute.cluster_resolver.SlurmClusterResolver(
        port_base=port_base, gpus_per_node=tasks_per_node, gpus_per_task=1, auto_set_gpu=False)
    spec = slurm.cluster_spec()
    task_type, task_id = slurm.get_task_info()
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        spec, task_type=task_type, task_id=task_id, num_accelerators={"GPU": 0}, rpc_layer="grpc")


def _node_gpus() -> int:
    """GPUs of this node without initialising CUDA: none where nvidia-smi is missing."""
    if shutil.which("nvidia-smi") is None:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    try:
        out = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


def _fix_keras_multi_worker_logs() -> None:
    """Let Keras 3 report a multi-worker step's scalar logs (loss, metrics) without failing.

    Under MultiWorkerMirroredStrategy, Keras 3 reduces every log value with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails for scalars with "Invalid reduction
    dimension 0 for input with 0 dimensions" (tensorflow/tensorflow#72388): fit, evaluate and
    test_on_batch all stop at their first step. Scalars are reduced without an axis instead;
    everything else still goes through Keras' own reduction.
    """
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "aimed_fix", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)

        def reduce(value):
            if len(getattr(value, "shape", ())) == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tree.map_structure(reduce, values)

    reduce_per_replica.aimed_fix = True
    trainer.reduce_per_replica = reduce_per_replica

    # fit() first builds the model from one batch, which it gets by reducing the batch's
    # PerReplica tensors with strategy.reduce, unsupported for a structure of them. The local
    # part of the batch has the same shapes, and the model and optimizer are built already anyway.
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and strategy is not None and trainer._collective_all_reduce_multi_worker(strategy):
            for _, _, it in iterator:
                data_batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues)
                    else v, next(it))
                break
            iterator = None
        return original_build(self, iterator=iterator, data_batch=data_batch)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


def _device_key(tf: Any, name: str) -> tuple:
    """``(type, index)`` of a device name in any of TF's spellings (``/gpu:0``, ``/device:GPU:0``, ...)."""
    spec = tf.DeviceSpec.from_string(name)
    return (spec.device_type or "").upper(), spec.device_index or 0


def is_chief(strategy: Any) -> bool:
    """Whether this process writes checkpoints and results (always, except non-chief workers)."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))
