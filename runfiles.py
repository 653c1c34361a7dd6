"""One training run's files, beside its model in the store (store.run_paths): whether a run resumes,
extends, starts afresh or is refused (prepare_run), the lock that keeps two processes off one
run (RunLock), and the recovery of work files a kill left half-written (recover_run_files,
drop_incomplete_rows, rewind_backup). training.Run goes through here; store.py keeps where models
live and how they load.
"""

import json
import os
import pathlib
import shutil
import socket
import sys

import machine
from store import read_json, write_json

EXTENDABLE = ("epochs", "max_minutes")  # what resume="extend" may change in a finished run


class RunExists(FileExistsError):
    """A finished model exists with other arguments (the message is one line: what changed, the ways out)."""


def prepare_run(model_name, config, paths, resume, overwrite, defaulted=None):
    """Decide resume / extend / fresh / refuse for a run in its files `paths` (store.run_paths), and
    make its work folder. Returns (resuming, None), or (None, record) when it is trained already.
    An interrupted run (or extension) with the same arguments resumes first of all; a finished
    run's folder (kept, marked finished) only serves resume="extend". `defaulted`: {argument: its
    earlier defaults} for the arguments of `config` the caller was not given; where the run on disk
    has an earlier default there and differs in nothing else (extending: nothing but EXTENDABLE), it
    is that run, and `config` takes its value in place."""
    previous, state = read_json(paths["config"]), read_json(paths["state"]) or {}
    defaulted = {} if overwrite else defaulted or {}  # overwrite: afresh, at today's defaults
    if resume and previous and not state.get("finished") and _adopt(config, previous, defaulted) == previous:
        _take(config, previous, defaulted)
        return True, None
    if paths["final"].exists() and not overwrite:
        done = read_json(paths["record"]) or {}
        old = done.get("config") or {}
        _take(config, old, defaulted, EXTENDABLE if resume == "extend" else ())
        if done.get("config") == config:
            print(f"{paths['final']} is already trained with these arguments; nothing to do.")
            return None, done
        changed = _differences(old, config)
        told = _differences(old, _adopt(config, old, defaulted, EXTENDABLE))  # the refusal's: as --extend would see it
        kept = state.get("finished") and previous == old
        if resume == "extend" and kept and set(changed) <= set(EXTENDABLE):
            _check_more(changed)
            for k in ("fit_done", "stopped_by_budget", "finished"):
                state.pop(k, None)
            write_json(paths["state"], state)
            write_json(paths["config"], config)
            done = state["epochs_done"]
            print(f"Extending {model_name} ({_changes(changed)}) from its {done} epoch{'' if done == 1 else 's'}.", flush=True)
            return True, None
        raise RunExists(_refusal(model_name, paths, told, resume == "extend" and not kept))
    if previous and not state.get("finished"):
        changed = _differences(previous, config)
        print(f"Discarding the interrupted run of {model_name} in {paths['run']} ({state.get('epochs_done', 0)} "
              f"epochs done): " + (f"its arguments differ ({_changes(changed)})" if changed else "resume=False"),
              flush=True)
    shutil.rmtree(paths["run"], ignore_errors=True)
    paths["csv"].unlink(missing_ok=True)
    paths["run"].mkdir(parents=True, exist_ok=True)
    write_json(paths["config"], config)
    return False, None


def _adopt(config, earlier, defaulted, allowed=()):
    """`config` with each defaulted argument as `earlier` (a run on disk) had it, where that was one of
    the argument's earlier defaults and leaves no other difference than `allowed`; else `config`
    unchanged. A default changed since that run (colorizer_6's batch, 128 -> 64) then keeps the run
    instead of refusing or discarding it; a value the caller chose then (another batch) does not."""
    adopted = {**config, **{k: earlier[k] for k, before in defaulted.items() if earlier.get(k) in before}}
    return adopted if earlier and set(_differences(earlier, adopted)) <= set(allowed) else config


def _take(config, earlier, defaulted, allowed=()):
    """Apply _adopt to `config` in place (the run holds it), saying what it took."""
    adopted = _adopt(config, earlier, defaulted, allowed)
    taken = {k: (config[k], adopted[k]) for k in defaulted if config.get(k) != adopted.get(k)}
    if taken:
        print("Keeping the run's own " + ", ".join(f"{k} {b!r} (the default is now {a!r})" for k, (a, b)
                                                 in taken.items()), flush=True)
        config.update(adopted)


def _differences(old, new):
    """{argument: (old value, new value)} for each argument that differs, one side missing included
    (an option given to one run and not the other)."""
    return {k: (old.get(k), new.get(k)) for k in {**old, **new} if old.get(k) != new.get(k)}


def _check_more(changed):
    """resume="extend" continues a run: it may ask for more epochs or minutes, never fewer."""
    for k, (old, new) in changed.items():
        if new is not None and (old is None or new < old):
            raise RunExists(f"resume='extend' continues a run to more {k}, not fewer ({k}: {old!r} → {new!r}); "
                            f"pass overwrite=True (--overwrite) to train it afresh with {k} {new!r}.")


def _changes(changed):
    return ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in changed.items())


def _refusal(model_name, paths, changed, no_state):
    """The one-line message of RunExists: what changed and the ways out."""
    ways = "pass overwrite=True (--overwrite) to train it afresh, or choose another models_dir"
    if "batch_size" in changed:  # e.g. trained at 128 before the model got its own batch
        ways = f"pass batch_size={changed['batch_size'][0]!r} (--batch-size) to keep its batch, or {ways}"
    if no_state:
        why = "its training state was not kept (trained before runs could be extended)"
    elif set(changed) <= set(EXTENDABLE):
        return (f"{paths['final']} is already trained with other arguments ({_changes(changed)}): pass "
                f"resume='extend' (--extend) to continue it from its saved state, or {ways}.")
    else:
        why = f"only {' and '.join(EXTENDABLE)} can change when a run is extended"
    return f"{paths['final']} is already trained with other arguments ({_changes(changed)}); {why}: {ways}."


def drop_incomplete_rows(csv_path):
    """Rewrite a CSVLogger file without the rows a killed run left half-written (a missing field, an
    unreadable number, no end of line: appending after it would corrupt the next row too), with a
    note; returns how many were dropped."""
    p = pathlib.Path(csv_path)
    if not p.exists():
        return 0
    text = p.read_text()
    lines = text.splitlines(keepends=True)
    if not lines:
        return 0
    header = lines[0].rstrip("\n").split(",")
    def complete(line):
        fields = line.rstrip("\n").split(",")
        try:
            [float(v) for v in fields]  # "nan" is a number here: a diverged epoch is a complete row
        except ValueError:
            return False
        return line.endswith("\n") and len(fields) == len(header)
    keep = [lines[0]] + [ln for ln in lines[1:] if complete(ln)]
    dropped = len(lines) - len(keep)
    if dropped:
        machine.write_atomic(p, lambda tmp: tmp.write_text("".join(keep)))
        print(f"note: dropped {dropped} incomplete row(s) from {p} (written when the run was stopped)", flush=True)
    return dropped

# ----------------------------------------------------------------------------- a training run's files


class RunLock:
    """One training run per model and folder: `<name>.lock` names the running process (pid, its
    start time, host and command). A second run refuses at once, naming it; a lock whose process no
    longer exists (or whose pid now belongs to another process: a different start time) is cleared
    with a note."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __enter__(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self._owner()
                if self._held(owner):
                    raise RuntimeError(f"Another training run (process {owner.get('pid')} on {owner.get('host')}: "
                                       f"{owner.get('command', '?')}) is using {self.path.with_suffix('')}; wait for "
                                       f"it to finish, or stop it. (Lock file: {self.path}; if that run is gone, "
                                       f"delete it)") from None
                print(f"note: clearing the lock {self.path} left by a run that no longer exists "
                      f"(process {owner.get('pid')})")
                self.path.unlink(missing_ok=True)
                continue
            me = os.getpid()
            with os.fdopen(fd, "w") as f:
                json.dump(dict(pid=me, started=machine.process_started(me), host=socket.gethostname(),
                               command=" ".join(sys.argv)[:200]), f)
            return self
        raise RuntimeError(f"Could not take the training lock {self.path}")

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)

    def _owner(self):
        """The lock's contents as a dict; an older lock holding only a pid gives {'pid': pid}."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return {}
        try:
            owner = json.loads(text or "{}")
            return owner if isinstance(owner, dict) else {"pid": int(owner)}
        except (ValueError, TypeError):
            return {}

    @staticmethod
    def _held(owner):
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return False
        if owner.get("host", socket.gethostname()) != socket.gethostname():
            return True  # another host's process (a shared file system): it cannot be checked from here
        started = owner.get("started")
        return machine.process_alive(pid) and (started is None or machine.process_started(pid) in (None, started))


def _opens(path, read):
    try:
        read(path)
        return True
    except Exception:  # noqa: BLE001 - truncated, not HDF5/zip, bad CRC, bad JSON: it does not open
        return False


def _read_weights(path):
    import h5py
    with h5py.File(path, "r") as f:  # every array read: a truncated file can open and fail later
        f.visititems(lambda _, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)


def _read_keras(path):
    import zipfile
    with zipfile.ZipFile(path) as z:
        if z.testzip() is not None:
            raise ValueError("bad CRC")


def backed_up_epochs(paths):
    """How many epochs the run's backups hold (BackupAndRestore's metadata counts finished epochs):
    the latest, then the one before it."""
    out = []
    for suffix in ("", ".bkp"):
        try:
            meta = json.loads(paths["meta"].with_name(paths["meta"].name + suffix).read_text())
            if paths["latest"].with_name(paths["latest"].name + suffix).exists():
                out.append(int(meta["epoch"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return out


def rewind_backup(paths, done):
    """Make the backup of `done` finished epochs the latest (from the one before it when needed), or
    with 0 drop the backup (the run starts again); the run's state follows. Several workers resume
    from one epoch."""
    held = backed_up_epochs(paths)
    if held[:1] == [done]:
        return
    latest, meta = paths["latest"], paths["meta"]
    state = read_json(paths["state"]) or {}
    if done > 0 and done in held:
        shutil.copyfile(latest.with_name(latest.name + ".bkp"), latest)
        shutil.copyfile(meta.with_name(meta.name + ".bkp"), meta)
    else:
        shutil.rmtree(paths["backup"], ignore_errors=True)
        done = 0
    print(f"note: resuming after epoch {done}, the last one every worker has backed up", flush=True)
    write_json(paths["state"], {**state, "epochs_done": done})


def recover_run_files(model_name, paths):
    """A run killed while writing its work files can leave one of them half-written. The backup keeps
    the epoch before beside it (BackupAndRestore's double checkpoint): a latest backup that does not
    open is replaced by it; when neither opens, the run restarts from epoch 0. A best checkpoint that
    does not open is dropped (the epochs still to come write a new one; returns True). Each case is said."""
    latest, meta = paths["latest"], paths["meta"]
    ok = lambda w, m: _opens(w, _read_weights) and _opens(m, lambda p: json.loads(p.read_text())["epoch"])  # noqa: E731
    prev, prev_meta = latest.with_name(latest.name + ".bkp"), meta.with_name(meta.name + ".bkp")
    if latest.exists() and not ok(latest, meta):
        if prev.exists() and ok(prev, prev_meta):
            print(f"note: the latest backup of {model_name} in {paths['backup']} does not open (written when the run "
                  f"was stopped); resuming from the epoch before it", flush=True)
            shutil.copyfile(prev, latest)
            shutil.copyfile(prev_meta, meta)
        else:
            print(f"note: no backup of {model_name} in {paths['backup']} opens (written when the run was stopped); "
                  f"restarting it from epoch 0", flush=True)
            shutil.rmtree(paths["backup"])
            paths["csv"].unlink(missing_ok=True)
            paths["state"].unlink(missing_ok=True)
    drop_incomplete_rows(paths["csv"])
    if paths["best"].exists() and not _opens(paths["best"], _read_keras):
        print(f"note: the best checkpoint {paths['best']} does not open (written when the run was stopped); "
              f"dropped, the next epochs write a new one", flush=True)
        paths["best"].unlink()
        return True
    return False
