"""The torchvision backbones hashgym extracts features with, and how their weights are loaded.

ResNet-family backbones give the penultimate layer (after global average pooling); VGG
backbones give fc7 (after its ReLU). :func:`build_backbone` builds one without its classifier,
from ImageNet weights, a local state-dict file (read with ``weights_only=True``, never unpickled)
or a random initialisation; :func:`weights_identity` names those weights without building the
model (a file by its SHA-256, :func:`hashgym.identity.sha256_file`); :func:`to_tensor` turns ``uint8`` pictures
into the normalised input the backbones expect.

Feature extraction and its cache (:mod:`hashgym.features`), the image-based agents
(``hashgym.agents.cnn``) and the coding of new pictures (:mod:`hashgym.embed`) build their
networks here. ``torch`` and ``torchvision`` are imported inside the functions, so importing
this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hashgym.errors import DataError
from hashgym.identity import sha256_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "BACKBONES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RESNETS",
    "BackboneError",
    "build_backbone",
    "head_prefix",
    "to_tensor",
    "weights_identity",
]


#: A backbone or its weights cannot be had (an unknown name, a missing or damaged weights file,
#: one that does not fit the network, or ImageNet weights offline): this module's name for
#: :class:`~hashgym.errors.DataError`.
BackboneError = DataError


#: The ResNet-family backbones (penultimate layer); the others are VGGs (fc7).
RESNETS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
)
_VGGS = tuple(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn"))
#: Supported backbone names (torchvision model names).
BACKBONES: tuple[str, ...] = RESNETS + _VGGS

#: The channel means and deviations torchvision's ImageNet weights expect (also the input
#: normalisation of the CNN bodies in hashgym.agents.cnn).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def head_prefix(name: str) -> str:
    """The state-dict key prefix of ``name``'s classifier head (left out when loading a body)."""
    return "fc." if name in RESNETS else "classifier.6."


def build_backbone(
    name: str, weights: str | Path | None, n_outputs: int
) -> tuple[torch.nn.Module, torch.nn.Linear, int, str]:
    """The feature body of ``name``, a fresh ``n_outputs``-way head, the feature size, weights id.

    The body maps images to penultimate features (ResNets) or fc7 activations (VGG).

    :param name: a torchvision model of :data:`BACKBONES`.
    :param weights: ``"imagenet"`` (downloaded once by torchvision), a local state-dict file
        (loaded with ``weights_only=True``) or ``None`` (random initialisation).
    :param n_outputs: classes of the new head.
    :raises BackboneError: when the weights cannot be had or do not fit.
    """
    import torch
    from torchvision.models import get_model, get_model_weights

    if weights == "imagenet":
        enum = get_model_weights(name).DEFAULT
        try:
            model = get_model(name, weights=enum)
        except Exception as exc:  # URLError, OSError, RuntimeError from the hub
            raise BackboneError(
                f"cannot get ImageNet weights for {name} ({exc}); they are downloaded once and "
                f"need internet. Offline, pass a weights file (weights=PATH) or train the "
                f"backbone (train_epochs > 0)"
            ) from exc
        weights_id = str(enum)
    else:
        model = get_model(name, weights=None)
        weights_id = "none"
        if weights is not None:
            weights_id = _load_weights_file(model, name, Path(weights))
    if name in RESNETS:
        dim = int(model.fc.in_features)
        model.fc = torch.nn.Identity()
    else:
        dim = int(model.classifier[6].in_features)
        model.classifier = model.classifier[:6]  # fc6, ReLU, Dropout, fc7, ReLU, Dropout
    head = torch.nn.Linear(dim, n_outputs)
    return model, head, dim, weights_id


def _load_weights_file(model: torch.nn.Module, name: str, path: Path) -> str:
    """Load a state dict (``weights_only=True``) into ``model``, ignoring its classifier head."""
    import torch

    if not path.is_file():
        raise BackboneError(f"weights file missing: {path}")
    digest = sha256_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError
        raise BackboneError(
            f"cannot read weights file {path}: corrupted, or not a state dict that loads with "
            f"weights_only=True ({exc})"
        ) from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise BackboneError(f"weights file {path} does not hold a state dict of tensors")
    head = head_prefix(name)
    body = {k: v for k, v in state.items() if not k.startswith(head)}
    try:
        missing, unexpected = model.load_state_dict(body, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise BackboneError(f"weights file {path} does not fit backbone {name}: {exc}") from exc
    missing = [k for k in missing if not k.startswith(head)]
    if missing or unexpected:
        raise BackboneError(
            f"weights file {path} does not fit backbone {name}: missing keys {missing[:3]}, "
            f"unexpected keys {list(unexpected)[:3]}"
        )
    return f"file-sha256:{digest}"


def weights_identity(weights: str | Path | None, backbone: str) -> str:
    """The weights' identity for the cache key, without building the model."""
    if weights is None:
        return "none"
    if weights == "imagenet":
        from torchvision.models import get_model_weights

        return str(get_model_weights(backbone).DEFAULT)
    path = Path(weights)
    if not path.is_file():
        raise BackboneError(f"weights file missing: {path}")
    return f"file-sha256:{sha256_file(path)}"


def to_tensor(batch: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    """``uint8 [n, H, W, 3]`` → normalised ``float32 [n, 3, size, size]`` on ``device``."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std
