"""Torch devices as a user names them, checked before anything runs on them.

torch and Stable-Baselines3 differ on a device that is not there: torch fails at the first
tensor moved to it, SB3 quietly trains on the CPU instead. Either way a run asked for a GPU
does not get one without a clear word, so every command that takes ``--device`` (``train``,
``encode``, ``features``, ``bench``) checks it here first and refuses a device this machine
lacks.

torch is imported when a device is checked, not when this module is imported: the ``hashgym``
command builds every subcommand's parser at start-up, and most never touch torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hashgym.errors import SetupError

if TYPE_CHECKING:
    import torch

__all__ = ["DeviceError", "check_device"]


#: This module's name for :class:`~hashgym.errors.SetupError` (an alias).
DeviceError = SetupError


def check_device(device: str | None, name: str = "device") -> torch.device:
    """The torch device ``device`` names, when this machine has it.

    :param device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ...; ``None`` or ``"auto"``
        picks CUDA when present, else the CPU (SB3's ``"auto"``).
    :param name: how the caller calls the argument, for messages (``"--device"``).
    :raises DeviceError: for a name torch does not parse, or a GPU torch cannot see here
        (no CUDA, a CUDA index beyond the GPUs present, no MPS).
    :return: the device.
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise DeviceError(f"{name} must be a device name such as 'cpu' or 'cuda', got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise DeviceError(f"unknown {name} {device!r}: {exc}") from exc
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"{name}={device!r}, but torch sees no CUDA device on this "
                              f"machine (use 'cpu')")
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"{name}={device!r}, but this machine has {count} CUDA "
                              f"device(s) (cuda:0 to cuda:{count - 1})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{name}={device!r}, but torch sees no MPS device on this machine "
                          f"(use 'cpu')")
    return dev
