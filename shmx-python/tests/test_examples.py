"""The Python examples run against the Rust ones, as the README shows them: the seed's
temperature example (Python publisher, Rust `Subscriber<f64>`) and the camera viewer
(Rust publisher of 1920x1080 frames, Python frames as numpy views, checksums checked)."""

import os
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                        "python")
DEADLINE = 60


def test_temperature_from_python_to_rust(root, rust_example):
    rust = subprocess.Popen([rust_example("temperature"), "--count", "5"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert rust.stdout.readline().strip() == "ready"
        py = subprocess.run([sys.executable, os.path.join(EXAMPLES, "temperature.py"),
                             "--count", "5", "--rate", "100"], capture_output=True, text=True,
                            timeout=DEADLINE)
        assert py.returncode == 0, py.stderr
        published = [line.split()[1] for line in py.stdout.splitlines()
                     if line.startswith("published")]
        out, _ = rust.communicate(timeout=DEADLINE)
        assert rust.returncode == 0
        received = [line.split()[0] for line in out.splitlines()]
        assert received == published and len(received) == 5
        assert "last reading as history: " + published[-1] in py.stdout
    finally:
        rust.kill()


def test_camera_frames_from_rust_as_numpy_views(root, rust_example):
    rust = subprocess.Popen([rust_example("camera"), "publisher", "cam", "--count", "4",
                             "--fps", "0"], stdout=subprocess.PIPE, text=True)
    try:
        py = subprocess.run([sys.executable, os.path.join(EXAMPLES, "camera_view.py"), "cam",
                             "--count", "4"], capture_output=True, text=True, timeout=DEADLINE)
        assert py.returncode == 0, py.stdout + py.stderr
        assert "(1080, 1920, 3) uint8" in py.stdout and "checksum ok" in py.stdout
        assert "4 frames, 0 bad checksums" in py.stdout
        rust.communicate(timeout=DEADLINE)
        assert rust.returncode == 0
    finally:
        rust.kill()
