#!/usr/bin/env bash
# The Python binding's tests: builds the extension into a virtualenv (maturin, numpy,
# pytest and mcap, the independent reader of recordings, from the package index) and runs
# pytest, with the Rust peers of the cross-language tests and the shmx tool built first. Usage: shmx-python/test.sh [pytest args...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
command -v python3 >/dev/null || { echo "shmx-python/test.sh: python3 is missing (install CPython 3.9 or later)" >&2; exit 1; }
venv="$repo/target/python-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check maturin numpy pytest mcap
# The Rust peers and examples: given by SHMX_SEED_PEER, SHMX_STRUCT_PEER and
# SHMX_EXAMPLES_DIR (`cargo test` built them already), or built here.
if [ -z "${SHMX_SEED_PEER:-}" ] || [ -z "${SHMX_STRUCT_PEER:-}" ] || [ -z "${SHMX_EXAMPLES_DIR:-}" ]; then
    (cd "$repo" && cargo build -q --example seed_peer --example struct_peer \
        --example temperature --example camera --example sensor_network && cargo build -q -p shmx-cli)
fi
(cd "$here" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop -q)
cd "$here" && "$venv/bin/python" -m pytest -q tests "$@"
