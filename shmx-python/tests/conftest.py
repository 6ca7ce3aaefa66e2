"""Fixtures of the Python binding's tests: a fresh shmx root per test, and the Rust peer."""

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def root(monkeypatch):
    """A fresh private root (under /dev/shm) for one test, left empty, then removed."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    path = tempfile.mkdtemp(prefix="shmx-pytest-", dir=base)
    monkeypatch.setenv("SHMX_ROOT", path)
    yield pathlib.Path(path)
    left = os.listdir(path)
    shutil.rmtree(path, ignore_errors=True)
    assert left == [], f"files left behind: {left}"


@pytest.fixture(scope="session")
def rust_peer():
    """The path of `examples/seed_peer` (built by the test command, or here)."""
    path = os.environ.get("SHMX_SEED_PEER") or str(REPO / "target/debug/examples/seed_peer")
    if not os.path.exists(path):
        subprocess.run(
            ["cargo", "build", "-q", "--example", "seed_peer"], cwd=REPO, check=True
        )
    return path


@pytest.fixture(scope="session")
def struct_peer():
    """The path of `examples/struct_peer` (built by the test command, or here)."""
    path = os.environ.get("SHMX_STRUCT_PEER") or str(
        REPO / "target/debug/examples/struct_peer"
    )
    if not os.path.exists(path):
        subprocess.run(
            ["cargo", "build", "-q", "--example", "struct_peer"], cwd=REPO, check=True
        )
    return path


@pytest.fixture(scope="session")
def rust_example():
    """The path of a Rust example by name (built by the test command, or here)."""
    base = pathlib.Path(os.environ.get("SHMX_EXAMPLES_DIR") or REPO / "target/debug/examples")

    def path(name):
        exe = base / name
        if not exe.exists():
            subprocess.run(["cargo", "build", "-q", "--example", name], cwd=REPO, check=True)
        return str(exe)

    return path


@pytest.fixture(scope="session")
def shmx_tool():
    """The path of the `shmx` command-line tool (built by the test command, or here)."""
    given = os.environ.get("SHMX_TOOL")
    if given:
        # From `cargo test`, which holds the build directory: it cannot be built from here.
        if not os.path.exists(given):
            pytest.fail(f"{given} was not built: run the whole `cargo test --workspace`")
        return given
    path = str(REPO / "target/debug/shmx")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "-q", "-p", "shmx-cli"], cwd=REPO, check=True)
    return path
