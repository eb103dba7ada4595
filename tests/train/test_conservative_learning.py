"""-dE/dR must learn the forces, not only the direct head: a short run checks both."""

import csv

from tridft.train.loop import train

from .tiny import tiny_config, write_ethanol_subset


def validation_rows(run_dir):
    with open(run_dir / "validation.csv") as stream:
        return [{key: float(value) for key, value in row.items() if value}
                for row in csv.DictReader(stream)]


def test_minus_dE_dR_improves_with_training_and_keeps_up_with_the_direct_head(tmp_path):
    data = write_ethanol_subset(tmp_path / "ethanol.extxyz", 80)
    config = tiny_config(tmp_path / "run", data,
                         model={"features": 16, "layers": 2, "radial_basis": 8,
                                "latent_scalars": 8, "latent_vectors": 4, "head_hidden": 16,
                                "polarizability_channels": 2, "cutoff": 4.0},
                         data={"train": str(data),
                               "split": {"validation": 20, "test": 0, "seed": 0}},
                         training={"batch_size": 8, "max_steps": 300, "validate_every": 30,
                                   "checkpoint_every": 1000, "log_every": 30,
                                   "gradient_cosine_every": None, "warmup_steps": 10,
                                   "num_threads": 1, "lr": 5e-3})
    train(config, progress=False)
    rows = validation_rows(tmp_path / "run")
    first, last = rows[0], rows[-1]
    # -dE/dR learns: its validation error falls to well below where it started ...
    assert last["conservative_forces_mae"] < 0.6 * first["conservative_forces_mae"]
    # ... and it keeps up with the direct head (the bar for trained models is 1.15x; this
    # 300-step tiny model measured 1.3x). Without the conservative_forces loss term the
    # same run leaves -dE/dR at its starting error (0.819 eV/A at every validation).
    assert last["conservative_forces_mae"] < 1.5 * last["direct_forces_mae"]
