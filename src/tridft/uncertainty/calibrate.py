"""Fitting a trained model's LLPR: covariances over the training split, scales on validation.

    llpr = fit_uncertainty(model, train_records, validation_records)
    model.uncertainty = llpr        # saved with the model, restored by load_model

For every head LLPR supports (energy, direct forces, polarizability):

1. C = sum over the training structures (atoms, for forces) of J^T J, float64;
2. for each regulariser s^2 = r * trace(C) / P with r in REGULARIZERS, the raw
   variances v = J (C + s^2 I)^-1 J^T of every labelled validation component and the
   scale alpha^2 = mean(error^2 / v) that makes them calibrated on average;
3. the r with the smallest Gaussian negative log-likelihood of the validation errors
   is kept, with its alpha^2.

One forward pass over the training split and one over the validation split, each
with a few backward passes through the heads' last layers.
"""

from __future__ import annotations

import logging
import math
from typing import Iterator, Sequence

import numpy as np
import torch

from tridft.data.batch import Batch, collate
from tridft.data.record import Record
from tridft.errors import InputError
from tridft.uncertainty.llpr import (LLPR, HeadCalibration, probe, raw_variances,
                                     supported_heads)

logger = logging.getLogger(__name__)

# s^2 relative to the mean eigenvalue of C.
REGULARIZERS = tuple(10.0 ** k for k in range(-10, 1))


def _batches(model, records: Sequence[Record], batch_size: int) -> Iterator[Batch]:
    parameter = next(model.parameters())
    for start in range(0, len(records), batch_size):
        yield collate(records[start:start + batch_size], model.cutoff,
                      dtype=parameter.dtype).to(parameter.device)


def _jacobians_and_outputs(model, batch: Batch, heads: dict):
    with torch.enable_grad(), probe(model, batch, heads) as jacobian_probe:
        outputs = model(batch, forces="direct")
        jacobians = jacobian_probe.jacobians(outputs)
    return jacobians, {k: v.detach() for k, v in outputs.items()}


def label_errors(model, name: str, outputs: dict, batch: Batch):
    """(errors (G, D), labelled (G,) bool) of head ``name`` against the batch's labels."""
    kind = model.heads[name].kind
    predicted = outputs[name].to(torch.float64)
    if kind == "energy":
        return (predicted - batch.energy.to(torch.float64)).reshape(-1, 1), batch.energy_mask
    if kind == "direct_forces":
        return predicted - batch.forces.to(torch.float64), batch.forces_mask
    if kind == "polarizability":
        errors = predicted - batch.polarizability.to(torch.float64)
        return errors.reshape(-1, 9), batch.polarizability_mask
    raise ValueError(f"no labels known for head kind '{kind}'")


def training_covariances(model, records: Sequence[Record], heads: dict,
                         batch_size: int = 32) -> dict[str, tuple[torch.Tensor, int]]:
    """Head name -> (C (P, P) float64, number of structures or atoms summed)."""
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(heads, 0)
    for batch in _batches(model, records, batch_size):
        jacobians, _ = _jacobians_and_outputs(model, batch, heads)
        for name, jacobian in jacobians.items():
            block = torch.einsum("gdp,gdq->pq", jacobian, jacobian).cpu()
            sums[name] = block if name not in sums else sums[name] + block
            counts[name] += int(jacobian.shape[0])
    return {name: (sums[name], counts[name]) for name in heads}


def _inverses(covariance: torch.Tensor) -> list[tuple[float, torch.Tensor]]:
    """(s^2, (C + s^2 I)^-1) for every regulariser, through one eigendecomposition."""
    eigenvalues, vectors = torch.linalg.eigh(covariance)
    eigenvalues = eigenvalues.clamp_min(0.0)
    mean = max(float(eigenvalues.mean()), 1e-300)
    result = []
    for relative in REGULARIZERS:
        shift = relative * mean
        result.append((shift, (vectors / (eigenvalues + shift)) @ vectors.T))
    return result


def fit_uncertainty(model, train: Sequence[Record], validation: Sequence[Record],
                    batch_size: int = 32) -> LLPR:
    """The calibrated LLPR of ``model`` (see the module docstring).

    Heads whose labels are absent from ``validation`` are left out (with a log line).
    """
    if not train or not validation:
        raise InputError("uncertainty calibration needs training and validation structures")
    heads = supported_heads(model)
    was_training = model.training
    model.eval()
    try:
        covariances = training_covariances(model, train, heads, batch_size)
        candidates = {name: _inverses(covariance) for name, (covariance, _) in
                      covariances.items()}
        # Per head and regulariser: sum of error^2 / v, sum of log v, number of components.
        sums = {name: np.zeros((len(REGULARIZERS), 3)) for name in heads}
        for batch in _batches(model, validation, batch_size):
            jacobians, outputs = _jacobians_and_outputs(model, batch, heads)
            for name, jacobian in jacobians.items():
                errors, labelled = label_errors(model, name, outputs, batch)
                labelled = labelled.to(jacobian.device)
                if not bool(labelled.any()):
                    continue
                squared = errors[labelled] ** 2
                for k, (_, inverse) in enumerate(candidates[name]):
                    v = raw_variances(jacobian[labelled], inverse).clamp_min(1e-300)
                    sums[name][k] += [float((squared / v).sum()), float(v.log().sum()),
                                      v.numel()]
    finally:
        model.train(was_training)

    calibrated, report = {}, {}
    for name, (paths, level) in heads.items():
        ratio, log_v, count = sums[name].T
        if count[0] == 0:
            logger.info("uncertainty: no %s labels in the validation data, head left out", name)
            continue
        scales = ratio / count
        nll = 0.5 * (1.0 + np.log(scales) + log_v / count + math.log(2 * math.pi))
        best = int(np.argmin(nll))
        shift, inverse = candidates[name][best]
        calibrated[name] = HeadCalibration(modules=paths, level=level, inverse=inverse,
                                           scale=float(scales[best]), regularizer=shift)
        report[name] = {"regularizer_relative": REGULARIZERS[best],
                        "scale": float(scales[best]), "validation_nll": float(nll[best]),
                        "training_count": covariances[name][1],
                        "validation_components": int(count[best])}
        logger.info("uncertainty: %s calibrated (alpha^2 %.3g, regulariser %.0e)", name,
                    scales[best], REGULARIZERS[best])
    if not calibrated:
        raise InputError("uncertainty calibration: the validation structures carry none of "
                         "the labels of the model's heads")
    return LLPR(calibrated, report)
