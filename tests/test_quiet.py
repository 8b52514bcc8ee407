"""TensorFlow's start-up lines stay hidden whatever TF_CPP_MIN_LOG_LEVEL says; errors still show.

Each test runs a fresh process, since this one has imported TensorFlow already.
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from metaloss._quiet import without_startup_lines

# What `metaloss train` printed to stderr on a CPU machine with TensorFlow 2.21 before start-up
# was quieted (TF_CPP_MIN_LOG_LEVEL=1: all but the CPU-instruction lines, which need 0).
STARTUP_PATTERNS = [
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"cudart_stub\.cc.*Could not find cuda drivers on your machine",
    r"cpu_feature_guard\.cc.*This TensorFlow binary is optimized",
    r"To enable the following instructions",
    r"cuda_platform\.cc.*failed call to cuInit",
    # Printed by other TensorFlow versions and GPU machines.
    r"oneDNN custom operations are on",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"TF-TRT Warning",
]
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)  # absl/glog's prefix

ABSL_BANNER = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
)
NO_DRIVERS = (
    "I0000 00:00:1.0 12 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.\n"
)
FAILED_CUINIT = (
    "E0000 00:00:1.0 12 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)\n"
)
GENUINE = "E0000 00:00:1.0 12 plugin.cc:7] genuine trouble: could not open plugin\n"


def run(args, *, level: str | None, cwd=None, env=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # conftest sets 3 for this process
    if level is not None:
        full_env["TF_CPP_MIN_LOG_LEVEL"] = level
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600
    )


def startup_lines(stderr: str) -> list[str]:
    found = [p for p in STARTUP_PATTERNS if re.search(p, stderr)]
    return found + CPP_LOG_LINE.findall(stderr)


def test_without_startup_lines_keeps_what_it_does_not_know():
    text = ABSL_BANNER + NO_DRIVERS + FAILED_CUINIT + GENUINE + "Traceback (most recent call)\n"
    assert without_startup_lines(text) == GENUINE + "Traceback (most recent call)\n"


def test_failed_cuinit_stays_when_the_machine_has_cuda_drivers():
    # Without the "no drivers" line, a failed cuInit says why a GPU goes unused.
    assert without_startup_lines(ABSL_BANNER + FAILED_CUINIT) == FAILED_CUINIT


FAKE_TENSORFLOW = """
import os
os.write(2, {written!r}.encode())
{fail}

class config:
    @staticmethod
    def list_logical_devices():
        os.write(2, {at_device_start!r}.encode())
        return []

class _Logger:
    def setLevel(self, level):
        pass

def get_logger():
    return _Logger()
"""


def fake_tensorflow(tmp_path, *, fail: bool):
    package = tmp_path / "tensorflow"
    package.mkdir()
    source = FAKE_TENSORFLOW.format(
        written=ABSL_BANNER + NO_DRIVERS + GENUINE,
        at_device_start=FAILED_CUINIT,
        fail="raise ImportError('libcudart.so: cannot open shared object file')" if fail else "",
    )
    (package / "__init__.py").write_text(source)
    return {"PYTHONPATH": str(tmp_path)}  # ahead of the real one in site-packages


QUIET_IMPORT = "from metaloss._quiet import quiet_tensorflow; quiet_tensorflow()"


@pytest.mark.parametrize("level", [None, "1", "2", "3"])
def test_a_library_line_it_does_not_know_is_written_back(tmp_path, level):
    process = run(["-c", QUIET_IMPORT], level=level, env=fake_tensorflow(tmp_path, fail=False))
    assert process.returncode == 0, process.stderr
    assert process.stderr == GENUINE


def test_a_failed_import_shows_everything_it_printed(tmp_path):
    process = run(["-c", QUIET_IMPORT], level="1", env=fake_tensorflow(tmp_path, fail=True))
    assert process.returncode == 1
    assert process.stderr.startswith(ABSL_BANNER + NO_DRIVERS + GENUINE)
    assert "ImportError: libcudart.so: cannot open shared object file" in process.stderr


def test_level_0_leaves_tensorflow_its_own_output(tmp_path):
    code = QUIET_IMPORT + "; import tensorflow"
    process = run(["-c", code], level="0", env=fake_tensorflow(tmp_path, fail=False))
    assert process.stderr == ABSL_BANNER + NO_DRIVERS + GENUINE  # no devices started here


@pytest.mark.parametrize("level", [None, "1", "3"])
def test_train_prints_no_startup_lines(tmp_path, level):
    output = tmp_path / "run"
    args = ["-m", "metaloss", "train", "--dataset", "spiral", "--epochs", "1", "--output", output]
    process = run([str(a) for a in args], level=level, cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    assert startup_lines(process.stderr) == [], process.stderr
    assert (output / "results.json").exists()


def test_train_with_a_missing_loss_file_says_so_without_startup_lines(tmp_path):
    process = run(
        ["-m", "metaloss", "train", "--dataset", "spiral", "--loss", "missing.json"],
        level="1",
        cwd=tmp_path,
    )
    assert process.returncode == 2
    assert "Invalid value for '--loss'" in process.stderr and "missing.json" in process.stderr
    assert startup_lines(process.stderr) == [], process.stderr


TENSORFLOW_ERRORS = """
from metaloss._quiet import quiet_tensorflow

quiet_tensorflow()
import tensorflow as tf

message = tf.constant("genuine trouble after start-up")
tf.raw_ops.PrintV2(input=message, output_stream="log(error)")  # a C++ LOG(ERROR) line
tf.io.read_file("no-such-file.txt")  # a C++ kernel fails: NotFoundError
"""


@pytest.mark.parametrize("level", [None, "1"])
def test_errors_after_startup_reach_the_user(tmp_path, level):
    process = run(["-c", textwrap.dedent(TENSORFLOW_ERRORS)], level=level, cwd=tmp_path)
    assert process.returncode == 1
    assert re.search(r"^E\d{4} .*genuine trouble after start-up", process.stderr, re.MULTILINE)
    assert "NotFoundError" in process.stderr and "no-such-file.txt" in process.stderr
    assert [p for p in STARTUP_PATTERNS if re.search(p, process.stderr)] == [], process.stderr
