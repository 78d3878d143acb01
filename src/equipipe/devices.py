"""Choice of the PyTorch device from the ``device`` config setting."""

from __future__ import annotations

import logging

import torch

from equipipe.errors import ConfigError

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(setting: str, config_key: str = "device") -> torch.device:
    """Return the torch device for ``setting`` (``auto``, ``cpu`` or ``cuda``).

    ``auto`` takes the first CUDA device when one is visible, else the CPU.

    Raises
    ------
    ConfigError
        If ``setting`` is not one of the choices, or ``cuda`` is requested but no
        CUDA device is visible.
    """
    if setting not in DEVICE_CHOICES:
        raise ConfigError(
            f"device={setting!r} is not one of {', '.join(DEVICE_CHOICES)}",
            field=config_key,
            fix=f"set {config_key} to auto, cpu or cuda in the config",
        )
    if setting == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        device = torch.device("cuda")
        logger.info("using CUDA device %s", torch.cuda.get_device_name(device))
        return device
    if setting == "cuda":
        raise ConfigError(
            "device='cuda' was requested but PyTorch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None})",
            field=config_key,
            fix=f"run on a GPU node with a CUDA build of PyTorch, or set {config_key} to auto or cpu",
        )
    return torch.device("cpu")
