#!/usr/bin/env bash
# Independent checkers the tests run (never used by the hub itself): onnxruntime + numpy + Pillow, the tus client
# tuspy, selenium (with Debian's chromium and chromium-driver, for the dashboard) and schemathesis (the API contract run,
# scripts/api-contract.sh) from PyPI in a
# project-local, git-ignored virtual environment. Quiet and quick when already there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if ! "$venv/bin/python" -c "import onnxruntime, numpy, PIL, tusclient, selenium, schemathesis" >/dev/null 2>&1; then
  echo "test-setup: installing onnxruntime, numpy, Pillow, tuspy, selenium and schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check onnxruntime numpy pillow tuspy selenium "schemathesis==4.32.5"
fi

# The dashboard's browser test drives Debian's headless Chromium through its WebDriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test-setup: installing chromium and chromium-driver"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }
fi

# gdb prints where a hung test is stuck (scripts/run-tests.sh) before the run is stopped.
if ! command -v gdb >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test-setup: installing gdb"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gdb >/dev/null \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gdb >/dev/null; }
fi
