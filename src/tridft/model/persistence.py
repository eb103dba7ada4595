"""Saving and loading models as plain tensors and plain configuration.

A model file is a dict of tensors, numbers, strings, lists and dicts, written
atomically and read with ``torch.load(..., weights_only=True)``: loading never
executes code from the file.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch

from tridft.errors import CheckpointError
from tridft.files import atomic_output
from tridft.model.config import ModelConfig
from tridft.model.model import TriDFTModel, build_model
from tridft.model.repulsion import N_ELEMENTS

FORMAT = "tridft-model"
FORMAT_VERSION = 1


def model_to_dict(model: TriDFTModel, metadata: dict | None = None) -> dict:
    """The plain dict that ``model_from_dict`` turns back into the same model."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.model_dump(),
        "heads": model.head_specs(),
        "elements": list(model.elements),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata or {},
        # The calibrated uncertainty (tridft.uncertainty.llpr): tensors and plain data.
        "uncertainty": _uncertainty_dict(model),
    }


def _uncertainty_dict(model: TriDFTModel) -> dict | None:
    llpr = getattr(model, "uncertainty", None)
    return None if llpr is None else llpr.to_dict()


def model_from_dict(payload: dict, source: str = "model") -> TriDFTModel:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a tridft model file")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{source}: written by a newer tridft (format "
                              f"{payload['format_version']}); upgrade tridft")
    try:
        # Models saved before message_normalization existed divided by the mean count;
        # those saved before rank-2 channels existed had none, nor a core repulsion.
        config = ModelConfig(**{"message_normalization": "mean", "tensor_channels": 0,
                                "latent_tensors": 0, "core_repulsion": False,
                                **payload["config"]})
        model = build_model(config, head_specs=payload["heads"])
        model.elements = list(payload.get("elements", []))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        detail = " ".join(str(error).split())[:200] or type(error).__name__  # one line
        raise CheckpointError(f"{source}: damaged model file ({detail})") from None
    model.metadata = payload.get("metadata", {})
    model.uncertainty = None
    if payload.get("uncertainty"):
        from tridft.uncertainty.llpr import LLPR

        try:
            model.uncertainty = LLPR.from_dict(payload["uncertainty"])
        except (KeyError, TypeError) as error:
            raise CheckpointError(f"{source}: damaged uncertainty calibration ({error})") \
                from None
    return model


def with_core_repulsion(model: TriDFTModel) -> TriDFTModel:
    """A copy of ``model`` (trained before the core repulsion existed) with the prior added
    from the training domain saved in its metadata; predictions inside that domain are
    unchanged (the prior is zero there). See tridft.model.repulsion."""
    from tridft.data.domain import Domain

    domain = (getattr(model, "metadata", None) or {}).get("domain")
    if not domain:
        raise CheckpointError("the model file holds no training domain: the shortest "
                              "training distances where the core repulsion starts are unknown")
    payload = model_to_dict(model, getattr(model, "metadata", None))
    payload["config"]["core_repulsion"] = True
    table = torch.from_numpy(Domain.from_dict(domain).shortest_table())
    clone = model_from_dict({**payload, "state_dict": {
        **payload["state_dict"], "repulsion.onsets": torch.zeros(N_ELEMENTS, N_ELEMENTS)}})
    clone.repulsion.set_onsets(table)
    return clone.to(next(model.parameters()).dtype).train(model.training)


def atomic_torch_save(payload: dict, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename: never half a file."""
    with atomic_output(path) as temporary:
        with open(temporary, "wb") as stream:
            try:
                torch.save(payload, stream)
            except RuntimeError as error:  # torch's writer wraps the OSError (disk full)
                raise CheckpointError(f"{path}: cannot write ({' '.join(str(error).split())})") \
                    from None
            stream.flush()
            os.fsync(stream.fileno())


def safe_torch_load(path: str | os.PathLike, map_location="cpu") -> dict:
    """torch.load with weights_only=True and one-line errors for missing or unsafe files."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a model file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if not _looks_like_torch_file(path):
        raise CheckpointError(f"{path}: not a PyTorch file (damaged, or another format)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch names the offending global as "Unsupported global: GLOBAL module.Name".
        culprit = re.search(r"GLOBAL ([\w.]+)", str(error))
        if culprit is None:  # bytes the unpickler cannot parse at all
            raise CheckpointError(f"{path}: not a PyTorch file (damaged, or another format)") \
                from None
        raise CheckpointError(f"{path}: refused to load: the file contains Python objects "
                              f"other than tensors and plain data (found {culprit.group(1)})") \
            from None
    except (RuntimeError, EOFError, OSError) as error:
        detail = " ".join(str(error).split()).split(". ")[0][:160]  # torch's first sentence
        raise CheckpointError(f"{path}: cannot read the file: damaged or truncated "
                              f"({detail})") from None
    except (KeyError, ValueError, IndexError, TypeError):
        # What the unpickler raises on bytes that are not a torch file at all.
        raise CheckpointError(f"{path}: not a PyTorch file (damaged, or another format)") \
            from None


def _looks_like_torch_file(path: Path) -> bool:
    """A zip archive (torch.save since 1.6) or a pickle stream (the legacy format)."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the file ({error.strerror or error})") \
            from None
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def check_finite_weights(model: TriDFTModel, source: str = "model") -> None:
    """CheckpointError naming the first parameter or buffer holding NaN or infinity."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{source}: the weights hold NaN or infinite values "
                                  f"({name}): a diverged or damaged model")


def trained_force_source(model: TriDFTModel) -> str:
    """The forces a model was trained for ("direct" or "conservative"), from its metadata;
    "direct" when it does not say, "conservative" for a model without a direct force head
    (trained on energies only). Inference defaults to these."""
    heads = getattr(model, "heads", None)
    if heads is not None and "forces" not in heads and "energy" in heads:
        return "conservative"
    metadata = getattr(model, "metadata", None) or {}
    source = (metadata.get("training") or {}).get("force_source") \
        or ((metadata.get("config") or {}).get("training") or {}).get("force_source")
    return source if source in ("direct", "conservative") else "direct"


def save_model(model: TriDFTModel, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``model`` to ``path`` atomically. ``metadata`` must be plain data."""
    atomic_torch_save(model_to_dict(model, metadata), path)


def load_model(path: str | os.PathLike, map_location="cpu") -> TriDFTModel:
    """The model saved at ``path`` (a model file or a training checkpoint), in eval mode."""
    payload = safe_torch_load(path, map_location)
    if isinstance(payload, dict) and "model" in payload and payload.get("format") != FORMAT:
        payload = payload["model"]  # a training checkpoint wraps the model dict
    model = model_from_dict(payload, str(path)).eval()
    check_finite_weights(model, str(path))
    return model
