"""Typed model configuration: every architectural choice, validated when read."""

from __future__ import annotations

from typing import Literal, get_args, get_origin

from pydantic import (BaseModel, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)


def _allows_bool(annotation) -> bool:
    return annotation is bool or any(_allows_bool(arg) for arg in get_args(annotation))


class NoBooleanNumbers(BaseModel):
    """YAML's true/false is not a number: pydantic would read ``max_steps: true`` as 1."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value, info: ValidationInfo):
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(value, dict) and get_origin(annotation) is dict:  # a mapping to numbers
            value_type = get_args(annotation)[1]
            for key, item in value.items():
                if isinstance(item, bool) and not _allows_bool(value_type):
                    raise ValueError(f"{key}: expected a number, not {str(item).lower()}")
        elif isinstance(value, bool) and not _allows_bool(annotation):
            raise ValueError(f"expected a number, not {str(value).lower()}")
        return value


class ModelConfig(NoBooleanNumbers):
    """Architecture of a tridft model.

    >>> ModelConfig(features=32).layers
    3
    >>> ModelConfig(featurs=32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig
    featurs
    ...
    """

    model_config = ConfigDict(extra="forbid")

    # Backbone
    cutoff: float = Field(5.0, gt=0, description="neighbour cutoff, Angstrom")
    features: int = Field(64, gt=0, description="scalar and vector channels per atom")
    layers: int = Field(3, ge=1, description="message-passing layers")
    radial_basis: int = Field(16, gt=0, description="Bessel radial basis functions")
    tensor_channels: int = Field(0, ge=0, description="symmetric traceless rank-2 channels "
                                                     "per atom (0: scalars and vectors only)")
    envelope_exponent: int = Field(5, ge=2, description="smooth polynomial cutoff envelope")
    message_normalization: Literal["sqrt", "mean"] = Field(
        "sqrt", description="divide the messages summed over neighbours by the square root "
                            "of the training set's mean neighbour count (as NequIP) or by "
                            "the count itself (a mean); see docs/training.md")

    # Bottleneck: None means no compression (the latent is the backbone features).
    latent_scalars: int | None = Field(32, gt=0)
    latent_vectors: int | None = Field(16, gt=0)
    latent_tensors: int = Field(0, ge=0, description="rank-2 latent channels (from the "
                                "backbone's tensor_channels) read by the polarizability head")
    variational: bool = Field(True, description="sample the scalar latent while training")
    vector_gate: bool = Field(True, description="gate latent vectors by the scalar features")

    # Heads
    head_hidden: int = Field(64, gt=0, description="hidden width of the head MLPs")
    polarizability_channels: int = Field(8, gt=0,
                                         description="vector pairs building the anisotropic part")
    polarizability_edge_basis: int = Field(
        8, ge=0, description="radial functions of the polarizability's per-neighbour "
                             "anisotropic term (0: none)")

    dipole_charges: Literal["local", "equilibrated"] = Field(
        "local", description="the dipole head's charges: from each atom's environment, or "
                             "equilibrated over the molecule (model/charge_equilibration.py)")

    core_repulsion: bool = Field(True, description="screened nuclear (ZBL) repulsion below "
                                 "the shortest distance of each element pair in training; "
                                 "zero on every training structure (model/repulsion.py)")

    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _compression_is_all_or_nothing(self) -> "ModelConfig":
        if (self.latent_scalars is None) != (self.latent_vectors is None):
            raise ValueError("latent_scalars and latent_vectors are both set or both null")
        if self.latent_tensors and not self.tensor_channels:
            raise ValueError("latent_tensors needs rank-2 channels in the backbone "
                             "(tensor_channels > 0)")
        return self

    @property
    def compressed(self) -> bool:
        return self.latent_scalars is not None

    @property
    def latent_scalar_width(self) -> int:
        return self.latent_scalars if self.compressed else self.features

    @property
    def latent_vector_width(self) -> int:
        return self.latent_vectors if self.compressed else self.features

    @property
    def latent_tensor_width(self) -> int:
        """Rank-2 latent channels the polarizability head reads (0: none)."""
        if not self.latent_tensors:
            return 0
        return self.latent_tensors if self.compressed else self.tensor_channels
