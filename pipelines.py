"""tf.data pipelines for training: crops, the train/validation split, per-worker shards, and the
streaming pipeline over a memory-mapped photo cache (data.py builds datasets with these)."""

import numpy as np

import machine  # noqa: F401  (TensorFlow, imported lazily below, reads the environment it sets: oneDNN on)


def crop_size(image_size):
    """Square size at which a folder is cached for training at `image_size`: an eighth larger,
    so random crops move the frame (centre crops for validation and evaluation)."""
    return int(image_size) + int(image_size) // 8


def random_crops(images, size, rng, flip=True):
    """Random `size` x `size` crops (and horizontal flips) of uint8 images (N, S, S, 3)."""
    n, s = len(images), images.shape[1]
    out = np.empty((n, size, size, 3), np.uint8)
    ys, xs = rng.integers(0, s - size + 1, n), rng.integers(0, s - size + 1, n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    for i in range(n):
        crop = images[i, ys[i]:ys[i] + size, xs[i]:xs[i] + size]
        out[i] = crop[:, ::-1] if flips[i] else crop
    return out


def centre_crops(images, size):
    s = images.shape[1]
    o = (s - size) // 2
    return np.asarray(images[:, o:o + size, o:o + size])


def shard_rows(rows, shard):
    """Worker i of n's part of `rows` (rows i, i + n, ...; the remainder beyond a multiple of n left
    out, so every worker has as many); all of them when `shard` is None."""
    if shard is None:
        return rows
    i, n = shard
    if len(rows) < n:
        raise ValueError(f"{len(rows)} rows cannot be shared by {n} workers (each needs one at least): use more "
                         f"photos, a larger val_fraction, or fewer workers")
    return rows[i:len(rows) // n * n:n]


def make_folder_train(fd, index, image_size, contract, batch_size=128, seed=0, drop_remainder=False, shard=None):
    """Streaming training pipeline over FolderData rows `index`: each epoch a seeded shuffle,
    batches read from the memory-mapped cache in sorted order, random crops and flips, encoded for
    the model's contract; a background thread and prefetch keep it ahead of training. With `shard`
    = (i, n), worker i's part of each epoch's shuffle (the same shuffle on every worker)."""
    import tensorflow as tf
    index = np.asarray(index)
    state = {"epoch": 0}
    pair = contract.codec().pair

    def batches():
        rng = np.random.default_rng([seed, state["epoch"]])
        state["epoch"] += 1
        order = shard_rows(rng.permutation(index), shard)
        stop = len(order) - (len(order) % batch_size if drop_remainder else 0)
        for i in range(0, stop, batch_size):
            rows = np.sort(order[i:i + batch_size])
            yield pair(random_crops(fd.images[rows], image_size, rng))

    x_ch, y_ch = contract.input_channels, contract.target_channels
    sig = (tf.TensorSpec((None, image_size, image_size, x_ch), tf.float32),
           tf.TensorSpec((None, image_size, image_size, y_ch), tf.float32))
    ds = tf.data.Dataset.from_generator(batches, output_signature=sig)
    n_rows = len(shard_rows(index, shard))
    n_batches = n_rows // batch_size + (0 if drop_remainder or n_rows % batch_size == 0 else 1)
    # a known length: Keras shows progress and does not warn that the generator "ran out of data"
    return ds.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(4)


# -----------------------------------------------------------------------------
# Pipelines

def split_train_val(n, val_fraction=0.1, seed=0):
    """Seeded split of `range(n)` into disjoint sorted `(train_idx, val_idx)` index arrays."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _flip(x, y):
    import tensorflow as tf
    flip = tf.random.uniform([]) < 0.5
    return tf.cond(flip, lambda: (tf.reverse(x, [1]), tf.reverse(y, [1])), lambda: (x, y))


def make_dataset(images, contract, batch_size=32, shuffle=True, seed=0, augment=False, drop_remainder=False,
                 shard=None):
    """uint8 RGB images -> batched, cached, prefetched `tf.data.Dataset` of `(input, target)`,
    encoded by a model's `contract` (contracts.Contract). `augment` adds random horizontal flips.
    `shard` = (i, n): worker i's part of the images (shard_rows), taken after the shuffle when
    shuffling (the same seeded shuffle on every worker), so that each epoch's left-over rows vary.
    """
    import tensorflow as tf
    x, y = contract.codec().pair(images if shuffle or shard is None else shard_rows(images, shard))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True)
        if shard is not None:
            shard_rows(x, shard)  # refuses too few rows
            ds = ds.take(len(x) // shard[1] * shard[1]).shard(shard[1], shard[0])
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment:
        ds = ds.map(_flip, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def with_luma(ds):
    """A dataset of (input, target) batches -> (input, target + the input's first channel): each
    pixel's L (the Lab contracts' input) beside its ab, for a loss on the decoded colours
    (heads.MixLoss's colourfulness term)."""
    import tensorflow as tf
    return ds.map(lambda x, y: (x, tf.concat([y, x[..., :1]], axis=-1)),
                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


class TrainVal(tuple):
    """(train dataset, validation dataset), with the split they came from as `.train_idx`, `.val_idx`."""
    train_idx = val_idx = None


def make_train_val(images, contract, batch_size=32, val_fraction=0.1, seed=0, augment=True,
                   drop_remainder=False, shard=None):
    """Training and validation datasets, the validation split carved out of `images` (a training set);
    unpacks as `train, val`, and hands back its split as `.train_idx` and `.val_idx`."""
    train_idx, val_idx = split_train_val(len(images), val_fraction, seed)
    train = make_dataset(images[train_idx], contract, batch_size, shuffle=True, seed=seed,
                         augment=augment, drop_remainder=drop_remainder, shard=shard)
    val = make_dataset(images[val_idx], contract, batch_size, shuffle=False, drop_remainder=drop_remainder, shard=shard)
    out = TrainVal((train, val))
    out.train_idx, out.val_idx = train_idx, val_idx
    return out


def sample_rows(n, subset, seed):
    """A seeded, sorted random sample of `subset` of `range(n)` (a folder is ordered by class, so
    never the first N)."""
    if not 0 < subset <= n:
        raise ValueError(f"subset must be between 1 and {n}, got {subset}")
    return np.sort(np.random.default_rng(seed).choice(n, subset, replace=False))
