"""The machine a number was measured on: CPU model, cores, bfloat16 units, oneDNN, matmul peak.

Hosts of one kind differ by 2x or more (some CPUs have AMX, some only AVX-512 BF16, some not even
AVX-512), so every training record and benchmark line carries `describe()`: images/s are comparable
only beside the peak measured on the same host.

Importing this module (data.py and setup_tf.py do, before TensorFlow) turns on TensorFlow's oneDNN
kernels unless TF_ENABLE_ONEDNN_OPTS is already set: TensorFlow enables them by itself only on
CPUs with AVX-512 VNNI/BF16, AVX-VNNI or AMX, and on a CPU with only AVX2 (an AMD EPYC host of this machine kind) its own
kernels trained the U-Nets 2.1-2.4x slower (README, Performance).
"""
import functools
import os
import pathlib
import platform
import re
import socket
import time

# read once, when TensorFlow is imported: set it before (a user's own setting, 0 included, wins)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _cpuinfo():
    try:
        return pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        return ""


def cpu_flags():
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model():
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def has_bf16():
    """True where the CPU computes bfloat16 natively (AVX-512 BF16 or AMX); elsewhere TF emulates it."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def matmul_gflops(n=2048, repeats=10, dtype="float32", trials=3):
    """GFLOP/s of an n x n matmul in `dtype` on this host (TensorFlow, all cores): the best of
    `trials` timings, so a busy moment or a cold thread pool does not lower the peak."""
    import tensorflow as tf
    with tf.device("/CPU:0"):  # the CPU's peak, even on a host with a GPU
        a = tf.cast(tf.random.normal((n, n)), dtype)
    f = tf.function(lambda x: tf.matmul(x, x))
    f(a).numpy()
    best = 0.0
    for _ in range(trials):
        t = time.perf_counter()
        with tf.device("/CPU:0"):
            for _ in range(repeats):
                r = f(a)
        r.numpy()
        best = max(best, 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e9)
    return best


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN kernels in this process (None where it cannot say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API tells
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def describe(peak=True):
    """{cpu, cores, avx512_bf16, amx, onednn, matmul peaks in GFLOP/s} of this host (the peaks measured once
    per process, a few seconds); a fresh dict each call. Imports TensorFlow (to ask about oneDNN)."""
    return dict(_describe(peak))


@functools.lru_cache(maxsize=2)
def _describe(peak):
    flags = cpu_flags()
    out = dict(cpu=cpu_model(), cores=os.cpu_count(), avx512_bf16="avx512_bf16" in flags, amx="amx_bf16" in flags,
               onednn=onednn_enabled())
    if peak:
        out["matmul_gflops_float32"] = round(matmul_gflops(), 1)
        if out["avx512_bf16"] or out["amx"]:  # has_bf16(), from the flags already read
            out["matmul_gflops_bfloat16"] = round(matmul_gflops(dtype="bfloat16"), 1)
    return out


# ----------------------------------------------------------------------------- processes on this host

_TMP_PID = re.compile(r"\.tmp(\d+)(?:@([A-Za-z0-9_-]+))?")


def is_terminal(stream):
    """Whether `stream` is a terminal: where a progress bar redrawn in place belongs (not a file or a
    pipe; a closed or missing stream, None under pythonw, is none)."""
    return bool(getattr(stream, "isatty", lambda: False)())


def host_name():
    return socket.gethostname().split(".")[0] or "host"


def temp_tag():
    """`.tmp<pid>@<host>`: the mark of this process's temporary files (remove_stale_temporaries)."""
    return f".tmp{os.getpid()}@{re.sub(r'[^A-Za-z0-9_-]', '-', host_name())}"


def process_alive(pid):
    """Whether a process with this id exists on this host (signal 0: nothing is sent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        pass
    return True


def process_started(pid):
    """When the process started (clock ticks since boot, /proc/<pid>/stat field 22), or None: with
    the pid it identifies a process even after the pid is reused."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def remove_stale_temporaries(folder, pattern="*.tmp*"):
    """Delete temporaries `<name>.tmp<pid>@<host>…` in `folder` written on this host by a process that
    no longer exists (a killed run's half-written file); returns the paths removed. Files of live
    processes, and of other hosts sharing the folder (their pids mean nothing here), are left."""
    removed, here = [], re.sub(r"[^A-Za-z0-9_-]", "-", host_name())
    for p in pathlib.Path(folder).glob(pattern):
        m = _TMP_PID.search(p.name)
        if m and m.group(2) in (None, here) and p.is_file() and not p.is_symlink() \
                and not process_alive(int(m.group(1))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


_CLEANED = set()  # folders whose stale temporaries this process removed (write_atomic, once each)


def write_atomic(target, write, overwrite=True):
    """Write a file through `write(temporary_path)` under a temporary name beside `target` (this
    process's temp_tag), then publish it: an interrupted or failed write (a full disk) never leaves
    half a file at `target` nor destroys a previous good one. With `overwrite` it is renamed into
    place; without, it is published by a hard link, which fails if `target` exists, so of two
    processes writing one target exactly one wins (the other gets FileExistsError). A target that is
    a symbolic link is refused, never written through. The first write into a folder removes the
    half-written temporaries a killed process left there (remove_stale_temporaries)."""
    target = pathlib.Path(target)
    if target.is_symlink():
        raise OSError(f"{target} is a symbolic link; not writing through it")
    if target.parent not in _CLEANED:
        _CLEANED.add(target.parent)
        remove_stale_temporaries(target.parent, ".*.tmp*")
    tmp = target.with_name(f".{target.name}{temp_tag()}")
    try:
        write(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            _publish_new(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _publish_new(tmp, target):
    """Move `tmp` to `target` only if `target` does not exist (FileExistsError otherwise), atomically."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: claim the name exclusively, then fill it
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.replace(tmp, target)
