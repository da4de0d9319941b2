#!/usr/bin/env bash
# The main job: set up, then build, inspect and evaluate the default catalog in operators/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

gscli build                                   # the default catalog into operators/ (kept if up to date)
mkdir -p operators/plots
for f in operators/*.h5; do                   # spectra and operator heat maps, one PNG per operator
  gscli inspect "$f" --plot "operators/plots/$(basename "$f" .h5).png" >/dev/null
done
gscli inspect operators/D12-D6.h5             # one file in full, as an example
gscli eval --catalog                          # re-check every guarantee from the files; exit 1 if any fails
echo "plots: operators/plots/*.png"
