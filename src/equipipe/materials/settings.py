"""Translation of the ``materials`` config section into the library's typed settings.

The workflow's config contains plain lists and numbers, validated by config/schema.yaml.
These helpers turn them into `SymmetryFunctionSet` and `TrainingConfig`. They also turn
the library's ``ValueError`` into a `ConfigError` that names the config key to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from equipipe.errors import ConfigError
from equipipe.materials.descriptors import SymmetryFunctionSet
from equipipe.materials.training import TrainingConfig

ANGULAR_KEYS = ("g4_etas", "g4_zetas", "g4_lambdas")


def symmetry_function_set(elements: Sequence[str], settings: Mapping[str, Any]) -> SymmetryFunctionSet:
    """Build the symmetry functions from ``materials.descriptors``.

    Keys left null take the values of `SymmetryFunctionSet.default` for the cutoff.
    """
    try:
        base = SymmetryFunctionSet.default(elements, cutoff=settings.get("cutoff", 6.0))
        chosen = {
            key: settings[key]
            for key in ("g2_etas", "g2_shifts", *ANGULAR_KEYS)
            if settings.get(key) is not None
        }
        if "angular" in settings:
            chosen["angular"] = settings["angular"]
        return SymmetryFunctionSet(
            elements=base.elements,
            cutoff=base.cutoff,
            g2_etas=chosen.get("g2_etas", base.g2_etas),
            g2_shifts=chosen.get("g2_shifts", base.g2_shifts),
            angular=chosen.get("angular", base.angular),
            g4_etas=chosen.get("g4_etas", base.g4_etas),
            g4_zetas=chosen.get("g4_zetas", base.g4_zetas),
            g4_lambdas=chosen.get("g4_lambdas", base.g4_lambdas),
        )
    except ValueError as error:
        raise ConfigError(
            f"invalid symmetry-function settings: {error}",
            field="materials.descriptors",
            fix="correct materials.descriptors in the config (see config/README.md)",
        ) from error


def training_config(settings: Mapping[str, Any], seed: int, device: str) -> TrainingConfig:
    """Build the training settings from ``materials.training``, a seed and a device."""
    try:
        return TrainingConfig(**dict(settings), seed=int(seed), device=device)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"invalid training settings: {error}",
            field="materials.training",
            fix="correct materials.training in the config (see config/README.md)",
        ) from error
