"""The callbacks of a training run: the wall-clock budget (Keras has none), the learning-rate
schedules (a plateau one that resumes where it was, a cosine one over the budget), one printed line per epoch, and the list training.py fits with."""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import math
import pathlib
import time

import numpy as np
import keras

import store

_read_json, _write_json = store.read_json, store.write_json


class TimeBudget(keras.callbacks.Callback):
    """Stop after the epoch in which `max_minutes` of training time (summed over resumed runs)
    run out, and keep the count of finished epochs and seconds in `state_path`. Keras has no
    wall-clock callback, hence this one."""

    def __init__(self, max_minutes, state_path, agree=bool):
        super().__init__()
        self.agree = agree  # several workers stop together: any worker's budget stops all
        self.max_seconds = None if max_minutes is None else 60.0 * max_minutes
        self.state_path = pathlib.Path(state_path)
        self.state = _read_json(self.state_path) or {"epochs_done": 0, "seconds": 0.0}

    @property
    def stopped(self):
        """True once the budget has stopped training (kept in the state file: a resumed run knows)."""
        return bool(self.state.get("stopped_by_budget"))

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.state["seconds"] += time.perf_counter() - self._t
        self.state["epochs_done"] = epoch + 1
        if self.agree(self.max_seconds is not None and self.state["seconds"] >= self.max_seconds):
            self.state["stopped_by_budget"] = True
            self.model.stop_training = True
        _write_json(self.state_path, self.state)


def make_callbacks(paths, max_minutes, history, epochs, verbose, lr_schedule="constant", agree=bool, largest=float):
    # without a best checkpoint on disk, the next epoch must write one whatever its loss
    best_so_far = min(history.get("val_loss", [math.inf])) if paths["best"].exists() else math.inf
    budget = TimeBudget(max_minutes, paths["state"], agree)
    # first, so that the CSV log sees the learning rate of every epoch; the rate itself is an
    # optimizer variable, backed up and restored with the rest
    schedule = []  # "constant": none
    if lr_schedule == "plateau":
        schedule = [ResumablePlateau(history, monitor="val_loss", factor=0.5, patience=2, min_lr=1e-5, verbose=0)]
    elif lr_schedule == "cosine":
        schedule = [CosineOverBudget(budget, epochs, largest)]
    callbacks = schedule + [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(paths["csv"]), append=True),
        keras.callbacks.ModelCheckpoint(str(paths["best"]), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=None if math.isinf(best_so_far) else best_so_far),
        # kept after the last epoch (delete_checkpoint=False): resume="extend" continues from it;
        # double_checkpoint: see runfiles.recover_run_files
        keras.callbacks.BackupAndRestore(str(paths["backup"]), double_checkpoint=True, delete_checkpoint=False),
        budget,  # it records an epoch as done only once it is backed up
    ]
    if verbose == "lines":
        callbacks.append(EpochLines(epochs, max_minutes, budget))
    return callbacks, budget


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau that, in a resumed run, starts from the history's best val_loss and the
    epochs since it (the rate itself comes back with the backup), as an uninterrupted run would."""

    def __init__(self, history, **kwargs):
        super().__init__(**kwargs)
        self.past = list(history.get(kwargs.get("monitor", "val_loss"), []))

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.past:
            best = int(np.argmin(self.past))
            self.best, self.wait = self.past[best], len(self.past) - 1 - best


class CosineOverBudget(keras.callbacks.Callback):
    """Cosine decay of the learning rate from its first value to `MIN_LR` over the run: over the
    time budget's minutes or over `epochs`, whichever runs out first (at each epoch's start, the
    larger of the two fractions spent). `largest` turns this worker's fraction into the largest of
    all workers' (distribute.largest): several workers apply the same all-reduced gradients, so they
    must also share one rate, or their weights drift apart. Why cosine: a plateau schedule fed by a
    noisy val_loss (random hints, small validation splits) can reach its floor within a third of a
    budget and learn little after. The first rate is kept in the budget's state, so a resumed run
    continues the same curve."""

    MIN_LR = 1e-5

    def __init__(self, budget, epochs, largest=float):
        super().__init__()
        self.budget, self.epochs, self.largest = budget, epochs, largest

    def on_train_begin(self, logs=None):
        # convert_to_numpy, not float(): under several workers the rate is a MirroredVariable
        self.base = self.budget.state.setdefault(
            "base_lr", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def on_epoch_begin(self, epoch, logs=None):
        done = epoch / max(self.epochs, 1)  # whichever ends the run first: the epochs or the minutes
        if self.budget.max_seconds:
            done = max(done, self.budget.state["seconds"] / self.budget.max_seconds)
        done = self.largest(done)
        self.model.optimizer.learning_rate = self.MIN_LR + 0.5 * (self.base - self.MIN_LR) * (1 + math.cos(math.pi * min(done, 1.0)))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # the CSV log and the history show the rate of every epoch
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class EpochLines(keras.callbacks.Callback):
    """One printed line per epoch, with the time it took and how long the run is expected to last:
    readable in a papermill log or a terminal, where a progress bar is not."""

    def __init__(self, epochs, max_minutes, budget):
        super().__init__()
        self.epochs, self.max_minutes, self.budget = epochs, max_minutes, budget

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        done, seconds = self.budget.state["epochs_done"], self.budget.state["seconds"]
        per_epoch = seconds / max(done, 1)
        left = max(0.0, self.epochs - done) * per_epoch
        if self.max_minutes is not None:
            left = min(left, max(0.0, 60 * self.max_minutes - seconds) + per_epoch)
        vals = ", ".join(f"{k} {v:.4f}" for k, v in logs.items() if "loss" in k)
        print(f"epoch {epoch + 1}/{self.epochs}: {vals} | {per_epoch:.0f} s/epoch, "
              f"{seconds / 60:.1f} min so far, about {left / 60:.1f} min left", flush=True)


def plural(n, word):
    """'1 epoch', '2 epochs', '1.5 minutes'."""
    return f"{n:g} {word}" + ("" if n == 1 else "s")
