#!/usr/bin/env bash
# Create the separate virtualenv that holds the peer codes (SchNetPack, MACE).
#
#   bash benchmarks/setup_peers.sh            # -> .venv-peers/ in the repository root
#   PEERS_VENV=/some/where bash benchmarks/setup_peers.sh
#
# The peers are never tridft dependencies: they live only in this environment.
# CPU torch 2.13.0 goes in first and every later install is constrained to it, so
# no package can swap it for another build.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${PEERS_VENV:-$ROOT/.venv-peers}"
PYTHON="${PYTHON:-python3}"

TORCH_VERSION="2.13.0"
SCHNETPACK_VERSION="2.1.1"
MACE_VERSION="0.3.16"
E3NN_VERSION="0.4.4"   # the version mace-torch 0.3.16 pins

"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install --quiet --upgrade pip

CONSTRAINTS="$VENV/constraints.txt"
printf 'torch==%s\n' "$TORCH_VERSION" > "$CONSTRAINTS"

# The CPU build: a local wheel (pip's find-links) or the registry's default index.
"$PIP" install --quiet "torch==$TORCH_VERSION"

# MACE: plain install (pins e3nn 0.4.4).
"$PIP" install --quiet -c "$CONSTRAINTS" "mace-torch==$MACE_VERSION" "e3nn==$E3NN_VERSION"

# SchNetPack 2.1.1 pins sympy<=1.12 while torch 2.13 needs sympy>=1.13.3; installing
# it with its dependencies makes pip fall back to schnetpack 2.0.4. So: the package
# without dependencies, then its listed requirements minus sympy.
"$PIP" install --quiet --no-deps "schnetpack==$SCHNETPACK_VERSION"
"$PIP" install --quiet -c "$CONSTRAINTS" \
  "numpy>=2.0.0" "ase>=3.21" h5py pyyaml "hydra-core>=1.1.0" "pytorch-lightning>=2.0.0" \
  torchmetrics "hydra-colorlog>=1.1.0" rich fasteners dirsync torch-ema "matscipy>=1.1.0" \
  "tensorboard>=2.17.1" "tensorboardX>=2.6.2.2" tqdm protobuf psutil
# (pre-commit and black, also listed, are development tools the benchmark does not use.)
# SchNetPack 2.1.1 imports torch's private name T_co, renamed _T_co in recent torch:
# benchmarks/peers/compat.py defines it before schnetpack is imported (no file is patched).

PYTHONPATH="$ROOT/benchmarks/peers" "$VENV/bin/python" -c '
import compat
print(compat.versions())
'
echo "peer environment ready: $VENV"
