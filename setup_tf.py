"""Import TensorFlow and Keras once, quietly. Every module that uses Keras imports this first.

TensorFlow's C++ core writes start-up lines ("oneDNN custom operations are on", "Could not find
cuda drivers") straight to file descriptor 2 while it is imported, before any log setting is
read; JupyterLab shows them as red error boxes. They are noise, so that import runs with the
descriptor pointed at /dev/null (a failing import still raises, with its traceback, afterwards).
TF_CPP_MIN_LOG_LEVEL=3 (unless already set) silences the later C++ messages, such as cuInit's
on a machine without a GPU. Python warnings are left alone: a real warning is fixed, not hidden.
"""
import os
import sys

import machine  # noqa: F401  (sets TensorFlow's environment that is read at import: oneDNN on)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_quietly():
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_quietly()
