#!/usr/bin/env bash
# The Python package (crates/python, issue 13): build the abi3 wheel with maturin in this
# workspace's target/ (the library crates are already built in release by the experiments),
# install it into a fresh venv with pinned maturin/pytest/NumPy/SciPy, and run its pytest suite,
# which checks values against SciPy/NumPy references. Needs only CPython (3.9+; the pinned NumPy
# and SciPy wheels need 3.11+) besides the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=target/python-ci-venv
"$PYTHON" --version
if ! "$PYTHON" -m venv --clear "$VENV" 2>/dev/null; then
  # Debian splits venv/ensurepip out of python3.
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  "$PYTHON" -m venv --clear "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check \
  maturin==1.16.0 pytest==9.2.0 numpy==2.4.6 scipy==1.17.1
rm -rf target/wheels
"$VENV/bin/maturin" build --release --manifest-path crates/python/Cargo.toml --out target/wheels
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps target/wheels/smoluchowski-*.whl
# Run from outside the checkout so `import smoluchowski` is the installed wheel.
(cd crates/python/tests && "../../../$VENV/bin/python" -m pytest -q -p no:cacheprovider .)
