"""Fitting a trained model's LLPR: covariances over the training split, scales on validation.

    llpr = fit_uncertainty(model, train_records, validation_records)
    model.uncertainty = llpr        # saved with the model, restored by load_model

For every head LLPR supports (energy, direct forces, polarizability):

1. C = sum over the training structures (atoms, for forces) of J^T J, float64;
2. for each regulariser s^2 = r * trace(C) / P with r in REGULARIZERS (and, for the
   direct forces, each weight w in DISAGREEMENTS of their squared difference d^2 to
   -dE/dR), the raw variances v = J (C + s^2 I)^-1 J^T (+ w d^2) of every labelled
   validation component and the scale alpha^2 = mean(error^2 / v) that makes them
   calibrated on average;
3. the (r, w) with the smallest Gaussian negative log-likelihood of the validation
   errors is kept, with its alpha^2.

One forward pass over the training split and one over the validation split, each
with one backward pass through the model (-dE/dR) and a few through the heads'
last layers.
"""

from __future__ import annotations

import logging
import math
from typing import Iterator, Sequence

import torch

from tridft.data.batch import Batch, collate
from tridft.data.record import Record
from tridft.errors import InputError
from tridft.model.inference import forward_with_jacobians
from tridft.uncertainty.llpr import (LLPR, PARTNERS, HeadCalibration, raw_variances,
                                     squared_disagreement, supported_heads)

logger = logging.getLogger(__name__)

# s^2 relative to the mean eigenvalue of C.
REGULARIZERS = tuple(10.0 ** k for k in range(-10, 1))
# Weight of the squared disagreement with a partner output, relative to the raw LLPR
# variance of the same head averaged over the validation components.
DISAGREEMENTS = (0.0,) + tuple(10.0 ** (k / 2) for k in range(-8, 9))
# At most this many validation structures enter the fit (their variances are kept in
# memory for every regulariser); validation splits are already random.
MAX_VALIDATION = 1000


def _batches(model, records: Sequence[Record], batch_size: int) -> Iterator[Batch]:
    parameter = next(model.parameters())
    for start in range(0, len(records), batch_size):
        yield collate(records[start:start + batch_size], model.cutoff,
                      dtype=parameter.dtype).to(parameter.device)


def _jacobians_and_outputs(model, batch: Batch, heads: dict, partners: bool):
    outputs, jacobians = forward_with_jacobians(model, batch, "both" if partners else "direct",
                                                False, heads)
    return jacobians, outputs


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
        jacobians, _ = _jacobians_and_outputs(model, batch, heads, partners=False)
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
    partners = {name: PARTNERS.get(model.heads[name].kind) for name in heads}
    was_training = model.training
    model.eval()
    try:
        covariances = training_covariances(model, train, heads, batch_size)
        candidates = {name: _inverses(covariance) for name, (covariance, _) in
                      covariances.items()}
        parts = {name: [] for name in heads}  # per batch: raw variances, d^2, errors^2
        for batch in _batches(model, validation[:MAX_VALIDATION], batch_size):
            jacobians, outputs = _jacobians_and_outputs(model, batch, heads,
                                                        any(partners.values()))
            for name, jacobian in jacobians.items():
                errors, labelled = label_errors(model, name, outputs, batch)
                labelled = labelled.to(jacobian.device)
                if not bool(labelled.any()):
                    continue
                raw = torch.stack([raw_variances(jacobian[labelled], inverse)
                                   for _, inverse in candidates[name]])  # (K, G, D)
                disagreement = torch.zeros(raw.shape[1], dtype=torch.float64)
                if partners[name] is not None:
                    disagreement = squared_disagreement(outputs, name, partners[name])
                    disagreement = disagreement[labelled.cpu()]
                parts[name].append((raw.cpu(), disagreement.cpu(),
                                    (errors[labelled] ** 2).cpu()))
    finally:
        model.train(was_training)

    calibrated, report = {}, {}
    for name, (paths, level) in heads.items():
        if not parts[name]:
            logger.info("uncertainty: no %s labels in the validation data, head left out", name)
            continue
        raw = torch.cat([p[0] for p in parts[name]], dim=1)  # (K, G, D)
        disagreement = torch.cat([p[1] for p in parts[name]])  # (G,)
        squared = torch.cat([p[2] for p in parts[name]])  # (G, D)
        fit = _best_fit(raw, disagreement, squared, partners[name] is not None)
        k, weight, scale, nll = fit
        shift, inverse = candidates[name][k]
        calibrated[name] = HeadCalibration(modules=paths, level=level, inverse=inverse,
                                           scale=scale, regularizer=shift,
                                           partner=partners[name], disagreement=weight)
        report[name] = {"regularizer_relative": REGULARIZERS[k], "scale": scale,
                        "disagreement": weight, "validation_nll": nll,
                        "training_count": covariances[name][1],
                        "validation_components": int(squared.numel())}
        logger.info("uncertainty: %s calibrated (alpha^2 %.3g, regulariser %.0e, "
                    "disagreement weight %.3g)", name, scale, REGULARIZERS[k], weight)
    if not calibrated:
        raise InputError("uncertainty calibration: the validation structures carry none of "
                         "the labels of the model's heads")
    return LLPR(calibrated, report)


def _best_fit(raw: torch.Tensor, disagreement: torch.Tensor, squared: torch.Tensor,
              has_partner: bool) -> tuple[int, float, float, float]:
    """(regulariser index, disagreement weight, alpha^2, NLL per component) with the
    smallest Gaussian negative log-likelihood of the errors ``squared`` (G, D).

    raw (K, G, D): LLPR variances per regulariser; disagreement (G,): d^2 per group.
    """
    best = None
    for k in range(raw.shape[0]):
        relative_to = float(raw[k].mean()) or 1.0
        for w in DISAGREEMENTS if has_partner else (0.0,):
            weight = w * relative_to
            variance = (raw[k] + weight * disagreement[:, None]).clamp_min(1e-300)
            scale = float((squared / variance).mean())
            if not math.isfinite(scale) or scale <= 0:
                continue
            nll = 0.5 * (1.0 + math.log(scale) + float(variance.log().mean())
                         + math.log(2 * math.pi))
            if best is None or nll < best[3]:
                best = (k, weight, scale, nll)
    if best is None:
        raise InputError("uncertainty calibration failed: the validation errors are all zero")
    return best
