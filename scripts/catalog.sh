#!/usr/bin/env bash
# The main job: set up, then build, inspect and evaluate the default catalog in operators/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
gscli build
gscli subgroups D12
