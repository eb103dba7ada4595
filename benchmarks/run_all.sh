#!/usr/bin/env bash
# Every full benchmark, one after the other (never in parallel: the cores are shared),
# in the order that gets the most answers early. Each step appends to its results
# file as runs finish and skips runs already there, so the script can be stopped
# and started again; later steps add second seeds where the first pass used one.
#
#   nohup bash benchmarks/run_all.sh > benchmarks.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

$PY benchmarks/ablations.py --seeds 2 --variants full,no_jacobian,no_bottleneck,energy_only,forces_only,polarizability_only,uncertainty,gradnorm,fixed_pcgrad
$PY benchmarks/ablations.py --seeds 1 --variants conservative_forces
$PY benchmarks/peers/compare.py
$PY benchmarks/low_data.py --grid partial_polarizability --seeds 1
$PY benchmarks/noise.py --seeds 1
$PY benchmarks/low_data.py --grid learning_curve --seeds 1
# Second seeds, as far as time allows.
$PY benchmarks/low_data.py --grid partial_polarizability --seeds 2
$PY benchmarks/noise.py --seeds 2
$PY benchmarks/ablations.py --seeds 2 --variants conservative_forces
$PY benchmarks/low_data.py --grid learning_curve --seeds 2
$PY benchmarks/plots.py
