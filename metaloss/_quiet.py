"""Importing TensorFlow without the lines its libraries print while they load.

TensorFlow 2.21 links its own copy of absl logging into ``libtensorflow_framework.so.2`` and
another into the profiler plugin; as each library loads, before Python can configure anything,
it writes "WARNING: All log messages before absl::InitializeLog() is called are written to
STDERR" and, on a machine without CUDA drivers, "Could not find cuda drivers on your machine"
straight to file descriptor 2. Neither ``TF_CPP_MIN_LOG_LEVEL`` nor ``GLOG_minloglevel`` reaches
them. Starting the devices then logs a failed ``cuInit`` at ERROR level, and, on other machines,
the oneDNN notice, the CPU-instruction advice, duplicate cuDNN/cuFFT/cuBLAS factory
registrations and the TF-TRT warning.

:func:`quiet_tensorflow` imports TensorFlow and starts its devices with descriptor 2 pointed
at a temporary file, then writes back every captured line that is not one of those start-up
lines: a warning or error it does not know still reaches the user, and everything does if the
import fails. Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

__all__ = ["STARTUP_LINES", "quiet_tensorflow", "without_startup_lines"]

STARTUP_LINES = tuple(
    re.compile(pattern)
    for pattern in (
        r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
        r"Could not find cuda drivers on your machine, GPU will not be used",
        r"This TensorFlow binary is optimized to use available CPU instructions",
        r"^To enable the following instructions: .* rebuild TensorFlow",  # continues the above
        r"oneDNN custom operations are on",
        r"Unable to register cu(DNN|FFT|BLAS) factory",
        r"TF-TRT Warning: Could not find TensorRT",
        r"computation placer already registered",
        r"successful NUMA node read from SysFS had negative value",
    )
)
"""Lines TensorFlow prints at every start-up; :func:`without_startup_lines` drops them."""

_NO_DRIVERS = STARTUP_LINES[1]
# Without CUDA drivers, the ERROR that cuInit failed says nothing new; with drivers, it says
# why the GPU is not used, and stays.
_FAILED_CUINIT = re.compile(r"failed call to cuInit")


def without_startup_lines(text: str) -> str:
    """Removes TensorFlow's start-up lines from captured standard error.

    Args:
        text: What TensorFlow wrote to standard error while it loaded.

    Returns:
        ``text`` without the lines matching :data:`STARTUP_LINES` (nor a failed ``cuInit``
        where the same text says the machine has no CUDA drivers), other lines unchanged.

    Example:
        >>> without_startup_lines("WARNING: All log messages before absl::InitializeLog() is "
        ...                       "called are written to STDERR\\nE0000 real trouble\\n")
        'E0000 real trouble\\n'
    """
    no_drivers = _NO_DRIVERS.search(text) is not None
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not any(pattern.search(line) for pattern in STARTUP_LINES)
        and not (no_drivers and _FAILED_CUINIT.search(line))
    ]
    return "".join(kept)


def quiet_tensorflow() -> None:
    """Imports TensorFlow without its start-up lines, whatever ``TF_CPP_MIN_LOG_LEVEL`` says.

    Call it before anything imports TensorFlow (Keras, ``metaloss.training``...); it does nothing
    once TensorFlow is loaded. ``TF_CPP_MIN_LOG_LEVEL`` keeps its meaning for what TensorFlow
    logs later and defaults to 2 (errors only); set to 0, it means "show everything", and
    TensorFlow is left to print its start-up lines too. Otherwise the Python logger
    ``tensorflow`` is set to ERROR as well: a search builds one train step per candidate, and
    TensorFlow's retracing warning would fire for each, though every trace is needed.

    Raises:
        ImportError: If TensorFlow fails to import; what it printed is written out first.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_logical_devices()  # device start-up logs here, still captured
            tf.get_logger().setLevel("ERROR")
            sys.stderr.flush()
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            sys.stderr.flush()
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        sys.stderr.write(without_startup_lines(captured.read().decode(errors="replace")))
        sys.stderr.flush()
