"""Small data and tiny models for the training tests (a few seconds each on one core)."""

from __future__ import annotations

import re
from pathlib import Path

from tridft.data.io import bundled_dataset_path
from tridft.train.config import TrainConfig, config_from_dict

# A model with a handful of channels: fast, and still every head and the bottleneck.
TINY_MODEL = {"features": 8, "layers": 1, "radial_basis": 4, "latent_scalars": 4,
              "latent_vectors": 2, "head_hidden": 8, "polarizability_channels": 2,
              "cutoff": 4.0}
ATOMS_PER_FRAME = 9  # ethanol


def write_ethanol_subset(path: Path, n_frames: int, without_polarizability=()) -> Path:
    """The first ``n_frames`` of the bundled dataset; frames ``without_polarizability`` lose
    their polarizability label (labels are often partial)."""
    lines = bundled_dataset_path().read_text().splitlines()
    frame_length = ATOMS_PER_FRAME + 2
    frames = []
    for k in range(n_frames):
        frame = lines[k * frame_length:(k + 1) * frame_length]
        if k in without_polarizability:
            frame[1] = re.sub(r'polarizability="[^"]*" ', "", frame[1])
            assert "polarizability" not in frame[1]
        frames.append("\n".join(frame))
    path.write_text("\n".join(frames) + "\n")
    return path


def tiny_config(run_dir: Path, data_path: Path, **sections) -> TrainConfig:
    """A TrainConfig for a tiny model on ``data_path``; ``sections`` update the defaults,
    e.g. training={"max_steps": 4}."""
    values = {
        "run_dir": str(run_dir),
        "data": {"train": str(data_path), "split": {"validation": 4, "test": 0, "seed": 0}},
        "model": dict(TINY_MODEL),
        "training": {"batch_size": 4, "max_steps": 6, "validate_every": 3,
                     "checkpoint_every": 2, "log_every": 1, "gradient_cosine_every": 2,
                     "warmup_steps": 2, "num_threads": 1},
    }
    for section, changes in sections.items():
        if isinstance(changes, dict):
            values[section] = {**values.get(section, {}), **changes}
        else:
            values[section] = changes
    return config_from_dict(values)
