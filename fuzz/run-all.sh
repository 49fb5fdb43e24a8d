#!/usr/bin/env bash
# Runs every atheris harness in this folder for a bounded number of inputs each.
# Usage: fuzz/run-all.sh [RUNS]   (default 20000 inputs per harness)
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:-20000}
for harness in fuzz_*.py; do
    corpus=$(mktemp -d)
    seeds="seeds/${harness#fuzz_}"
    seeds="${seeds%.py}"
    dirs=("$corpus")
    [ -d "$seeds" ] && dirs+=("$seeds")
    echo "== $harness: $runs runs"
    python3 "$harness" -atheris_runs="$runs" -max_len=4096 "${dirs[@]}" 2>&1 | tail -n 3
    rm -rf "$corpus"
done
