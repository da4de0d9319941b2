#!/usr/bin/env bash
# Set up gscli for development on a fresh Debian machine: gfortran (escnn's py3nj compiles Fortran),
# a virtual environment in .venv, the CPU build of torch, and gscli (editable) with every extra:
# cli (click, rich, matplotlib), build (escnn, numpy < 2), data (digits) and test.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v gfortran >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q gfortran >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q gfortran >/dev/null; }
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
PY=.venv/bin/python
if ! $PY -c "import torch" >/dev/null 2>&1; then
  # Pin torch before anything else asks for it: an unpinned torch would pull a multi-GB CUDA build.
  $PY -m pip install -q --disable-pip-version-check torch==2.13.0
fi
if ! $PY -c "import gscli, click, rich, matplotlib, escnn, pytest, hypothesis, build, sklearn, mlxtend, importlinter" >/dev/null 2>&1; then
  $PY -m pip install -q --disable-pip-version-check -e ".[cli,build,data,test]"
fi
