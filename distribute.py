"""Training on several workers or devices with tf.distribute: the strategy by name, TF_CONFIG
checked before anything starts, each worker's role and files, and the datasets sharded per worker.

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}' \
        python training.py colorizer_3 --data photos/ --strategy multi-worker      # once per worker

Every worker runs the same command with its own TF_CONFIG `task`. Each sees a disjoint part of each
epoch (rows i, i + n, i + 2n, ... of the same seeded shuffle; the few rows beyond a multiple of n
are left out of that epoch, so that every worker takes the same number of steps), with batch
batch_size / n: the global batch is what the user asked for. The chief (task "chief", or worker 0
when there is none) writes the model, its record and log where a one-machine run would; every
other worker keeps its run files (resume state, its copy of the model) under
`<models_dir>/.workers/worker-<i>/`, so a killed pair, started again, resumes together.
"""
import dataclasses
import json
import os

import machine  # noqa: F401  (TensorFlow, imported lazily below, reads the environment it sets: oneDNN on)

STRATEGIES = ("default", "mirrored", "multi-worker")
ROLES = ("chief", "worker")  # what MultiWorkerMirroredStrategy runs (no parameter servers, no evaluator)


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in a training cluster: worker `index` of `count`; the chief writes."""
    index: int = 0
    count: int = 1
    is_chief: bool = True

    @property
    def shard(self):
        """(index, count) for the data pipelines, or None on one worker."""
        return (self.index, self.count) if self.count > 1 else None


def read_tf_config(text=None):
    """TF_CONFIG (the environment's, or `text`) parsed and checked: a ValueError naming what is wrong
    (not set, not JSON, a role MultiWorkerMirroredStrategy does not run, an address without a port,
    a task that is not in the cluster)."""
    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text:
        raise ValueError("--strategy multi-worker needs TF_CONFIG, e.g. '{\"cluster\": {\"worker\": [\"host1:12345\", "
                         "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' (README, Training on "
                         "several machines)")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not JSON ({e}): {text!r}") from None
    cluster, task = (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    if not isinstance(cluster, dict) or not cluster.get("worker") and not cluster.get("chief"):
        raise ValueError(f"TF_CONFIG needs a cluster with a 'worker' list of host:port addresses; got {text!r}")
    for kind, addresses in cluster.items():
        if kind not in ROLES:
            raise ValueError(f"TF_CONFIG cluster role {kind!r} is not run by multi-worker training; choose from: "
                             f"{', '.join(ROLES)}")
        if not isinstance(addresses, list) or not addresses:
            raise ValueError(f"TF_CONFIG cluster[{kind!r}] must be a list of host:port addresses, got {addresses!r}")
        for a in addresses:
            host, _, port = str(a).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"TF_CONFIG address {a!r} in cluster[{kind!r}] is not host:port")
    if len(cluster.get("chief", [])) > 1:
        raise ValueError(f"TF_CONFIG may name one chief, got {cluster['chief']!r}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int) \
            or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ValueError(f"TF_CONFIG task {task!r} is not one of the cluster's tasks "
                         f"({', '.join(f'{k} 0-{len(v) - 1}' for k, v in cluster.items())})")
    return config


def local_tf_configs(n):
    """TF_CONFIG (JSON) for each of `n` workers on this machine, at free ports of 127.0.0.1: how
    the two-worker test and benchmarks/scaling.py start a cluster without other machines."""
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    for s in socks:
        s.close()
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}) for i in range(n)]


def role_in(config):
    """The Role of TF_CONFIG's task: the chief (or worker 0 without one) is index 0; workers follow."""
    cluster, task = config["cluster"], config["task"]
    chiefs = len(cluster.get("chief", []))
    index = task["index"] if task["type"] == "chief" else chiefs + task["index"]
    return Role(index, chiefs + len(cluster.get("worker", [])), index == 0)


def make_strategy(name):
    """(tf.distribute.Strategy, Role) for a strategy name of STRATEGIES. "default": one device, or
    MirroredStrategy over all GPUs when there are several; "mirrored": MirroredStrategy over this
    host's devices; "multi-worker": MultiWorkerMirroredStrategy over the TF_CONFIG cluster (to be
    made before TensorFlow runs anything else in the process, as TensorFlow requires)."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    config = read_tf_config() if name == "multi-worker" else None  # checked before TensorFlow starts
    import tensorflow as tf
    if config is not None:
        return tf.distribute.MultiWorkerMirroredStrategy(), role_in(config)
    if name == "mirrored" or len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy(), Role()
    return tf.distribute.get_strategy(), Role()


def strategy_for(strategy, batch_size):
    """(strategy, Role) for train()'s `strategy` argument (None, a name of STRATEGIES, or a
    tf.distribute.Strategy); on several workers, a ValueError unless each replica gets an equal
    share of the global `batch_size`."""
    strategy, role = make_strategy(strategy or "default") if strategy is None or isinstance(strategy, str) \
        else (strategy, Role())
    replicas = strategy.num_replicas_in_sync if role.count > 1 else 1
    if batch_size % replicas:
        raise ValueError(f"batch_size must be a multiple of the {replicas} replicas of the {role.count} workers "
                         f"(each takes an equal share of the global batch), got {batch_size}")
    return strategy, role


def worker_dir(models_dir, role):
    """Where this worker's run files go: `models_dir` for the chief, a folder of its own for the others."""
    return models_dir if role.is_chief else os.path.join(models_dir, ".workers", f"worker-{role.index}")


def per_worker(strategy, dataset, role):
    """A tf.data pipeline already sharded for this worker and batched with its share of the batch,
    handed to Keras as it is (no automatic sharding or re-batching on top); unchanged on one worker."""
    if role.count == 1:
        return dataset
    import tensorflow as tf
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    dataset = dataset.with_options(options)
    return strategy.distribute_datasets_from_function(lambda context: dataset)


def agree(strategy, role, flag):
    """True on every worker when `flag` is True on any (the time budget: all stop after one epoch)."""
    if role.count == 1:
        return bool(flag)
    import tensorflow as tf
    per_replica = strategy.run(lambda: tf.constant(1.0 if flag else 0.0))
    return bool(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None) > 0)


def largest(strategy, role, value):
    """The largest of every worker's `value` (a number from 0 to 1, to 1e-6): the cosine schedule's
    share of the budget spent, so that all workers follow one learning-rate clock."""
    if role.count == 1:
        return float(value)
    return float(gather(strategy, [round(float(value) * 1e6)]).max()) / 1e6


def detach_for_keras(model, role):
    """Several workers: let the model find its strategy from the scope it is fitted in (Run.fit)
    rather than remember it. Keras 3.15's fit/evaluate otherwise first reduce one batch across
    workers to build the model symbolically, and MultiWorkerMirroredStrategy cannot reduce an
    (input, target) pair (it raises "Attempt to convert a value (PerReplica...)"); the model's
    variables are all built already, so that step has nothing to do here."""
    if role.count > 1:
        _scalar_safe_reduce()
        model._distribute_strategy = None  # noqa: SLF001 - the one private attribute we touch, for the reason above


def _scalar_safe_reduce():
    """Keras 3.15 reduces each step's logs across workers with MEAN along axis 0, which a scalar
    (every loss and metric value) does not have ("Invalid reduction dimension 0 for input with 0
    dimensions"). Reduce scalars over the replicas instead (axis None); everything else as Keras does."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer
    original = trainer.reduce_per_replica
    if getattr(original, "scalar_safe", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction != "auto" or not trainer._collective_all_reduce_multi_worker(strategy):  # noqa: SLF001
            return original(values, strategy, reduction)

        def one(v):
            rank = strategy.experimental_local_results(v)[0].shape.rank
            return strategy.reduce("MEAN", v, axis=None if rank == 0 else 0)
        return tf.nest.map_structure(one, values)
    reduce_per_replica.scalar_safe = True
    trainer.reduce_per_replica = reduce_per_replica


def common_epoch(strategy, role, held):
    """The most finished epochs every worker holds a backup of (`held`: this worker's counts, newest
    first), or 0: a pair killed between one worker's backup and the other's resumes from one epoch,
    so that their weights stay the same."""
    if role.count == 1:
        return held[0] if held else 0
    mine = (list(held) + [0, 0])[:2]
    rows = gather(strategy, mine)
    common = set(rows[0]).intersection(*map(set, rows[1:])) - {0}
    return int(max(common)) if common else 0


def gather(strategy, values):
    """Every worker's list of whole numbers (of one length), as rows: one row per worker."""
    import tensorflow as tf
    return strategy.gather(strategy.run(lambda: tf.constant([values], tf.int64)), axis=0).numpy()


def average_statistics(strategy, role, model):
    """Average a trained model's non-trainable weights (batch normalisation's moving statistics:
    each worker's come from its own shard) over the workers, so that every worker holds one model:
    the trainable weights agree already (their gradients are all-reduced)."""
    if role.count == 1:
        return
    import tensorflow as tf
    for w in model.non_trainable_weights:
        value = tf.constant(w.numpy())
        w.assign(strategy.reduce(tf.distribute.ReduceOp.MEAN, strategy.run(lambda: value), axis=None).numpy())


DECISIONS = ("done", "resume", "fresh", "refuse")  # runfiles.prepare_run's outcomes


def agree_on_run(strategy, role, decision):
    """Every worker decides from its own files (nothing to do, resume, start afresh, refuse); a
    RuntimeError on all of them when they differ, instead of some waiting forever for the others."""
    if role.count == 1:
        return
    codes = gather(strategy, [DECISIONS.index(decision)])[:, 0]
    if len(set(codes)) > 1:
        found = ", ".join(f"worker {i}: {DECISIONS[c]}" for i, c in enumerate(codes))
        raise RuntimeError(f"The {role.count} workers found this run in different states ({found}): start them "
                           f"all with --overwrite to train afresh, or give each worker the files it had")
