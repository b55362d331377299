"""A CNN inside the agent: image observations to ``h(I)``, trained by the agent's own loss.

Both papers learn the image representation with the hash function: SCIHCGRL updates its
VGG-19's parameters by the reward's gradient at each step (§2.B, eq. (10)), DRLHIH feeds the
images with their constraints through a ResNet (§3, Fig. 1). With ``observation="image"``
(:mod:`hashgym.images`) the envs show the image, and :class:`ImageHashFeatures` is the
features extractor that turns it into the Q-network's input, at Stable-Baselines3's seam
(``policy_kwargs={"features_extractor_class": ImageHashFeatures}``):

``[proj(CNN(I)), c_t, t]``: the image goes through a CNN body and a linear projection with a
ReLU to ``h(I)``; the ``code`` window and the time index are appended as in
:class:`hashgym.agents.dqn.HashQFeatures`. The whole network trains on the agent's loss.

* **Bodies.** ``"small"``: two 3×3 convolutions (32 and 64 channels, ReLU, a 2×2 max-pool
  between them) and global average pooling, 64-d: cheap on a CPU and what the tests use.
  ``"resnet18"``, ``"resnet50"``, ``"vgg19"``: torchvision's, through
  :func:`hashgym.backbones.build_backbone` (penultimate layer, or fc7 for VGG), from random
  weights, ``"imagenet"`` or a state-dict file (``weights_only=True``), e.g. the backbone
  ``hashgym features --save-weights`` trained on the training images.
* **Input.** SB3 moves the channels first (``VecTransposeImage``) and scales pixels to
  ``[0, 1]``; the body then normalises them with the ImageNet channel statistics the
  torchvision bodies expect.
* **Augmentation.** While the network trains (``module.training``, SB3's ``train()``), each
  batch gets a random crop after padding by an eighth of the side and a random horizontal
  flip (:func:`hashgym.features.augment_batch`), as in the bank's own backbone training; acting,
  evaluating and encoding see the images as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from hashgym.agents.dqn import HashQFeatures
from hashgym.backbones import IMAGENET_MEAN, IMAGENET_STD, build_backbone
from hashgym.errors import AgentError
from hashgym.features import augment_batch
from hashgym.validation import check_count

__all__ = ["IMAGE_BODIES", "ImageBody", "ImageHashFeatures", "image_space_channels"]

#: The CNN bodies :class:`ImageHashFeatures` builds.
IMAGE_BODIES = ("small", "resnet18", "resnet50", "vgg19")

def _small_body(channels: int) -> tuple[nn.Module, int]:
    body = nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    return body, 64


class ImageBody(nn.Module):
    """A CNN body with its input normalisation and training-time augmentation: images
    ``[n, C, H, W]`` scaled to ``[0, 1]`` in, features ``[n, dim]`` out.

    :param backbone: one of :data:`IMAGE_BODIES` (see the module docstring).
    :param weights: a torchvision body's weights (``None``, ``"imagenet"`` or a state-dict
        file); must be ``None`` for ``"small"``.
    :param channels: the images' channels.
    :param augment: random crops and flips while the module trains.
    :raises AgentError: for an unknown backbone, weights for ``"small"`` or a non-boolean
        ``augment``.
    """

    def __init__(self, backbone: str = "small", weights: str | None = None, channels: int = 3,
                 augment: bool = True) -> None:
        super().__init__()
        if backbone not in IMAGE_BODIES:
            raise AgentError(f"unknown backbone {backbone!r}; expected one of "
                             f"{', '.join(IMAGE_BODIES)}")
        if not isinstance(augment, bool):
            raise AgentError(f"augment must be True or False, got {augment!r}")
        if backbone == "small":
            if weights is not None:
                raise AgentError("the 'small' body has no pretrained weights; weights must be None")
            self.body, self.dim = _small_body(channels)
        else:
            self.body, _, self.dim, _ = build_backbone(backbone, weights, 1)
        self.augment = augment
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.5,) * channels, (0.25,) * channels)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features ``[n, dim]`` of images ``[n, C, H, W]`` in ``[0, 1]``."""
        x = images.float()
        if self.training and self.augment:
            x = augment_batch(x)
        return self.body((x - self.mean) / self.std)


def image_space_channels(space: spaces.Space) -> tuple[int, bool] | None:
    """``(channels, channels_first)`` of a ``uint8`` image space (SB3's layouts), else ``None``."""
    if not isinstance(space, spaces.Box) or len(space.shape) != 3 or space.dtype != np.uint8:
        return None
    channels = int(min(space.shape[0], space.shape[-1]))
    return channels, space.shape[0] == channels


class ImageHashFeatures(BaseFeaturesExtractor):
    """The input layer of a hashing agent that sees images: ``[proj(CNN(I)), c_t, t]``.

    :param observation_space: the ``Dict`` observation space of an env made with
        ``observation="image"`` (SB3 hands over the channel-first ``[C, H, W]`` one).
    :param backbone: the CNN body, one of :data:`IMAGE_BODIES` (see the module docstring).
    :param weights: the torchvision body's weights: ``None`` (random), ``"imagenet"`` or a
        state-dict file; must be ``None`` for ``"small"``.
    :param projection_dim: the size of ``h(I)``, 256 as :class:`~hashgym.agents.dqn.HashQFeatures`.
    :param augment: random crops and flips while training (default on; off when acting).
    :raises AgentError: for an observation space without a ``uint8`` image, or bad arguments.
    """

    def __init__(self, observation_space: spaces.Dict, backbone: str = "small",
                 weights: str | None = None, projection_dim: int = 256,
                 augment: bool = True) -> None:
        image = observation_space.spaces.get("features") if isinstance(
            observation_space, spaces.Dict) else None
        layout = image_space_channels(image) if image is not None else None
        if layout is None:
            raise AgentError(
                "ImageHashFeatures needs the Dict observation of an env made with "
                f"observation='image' (a uint8 image under 'features'), got {observation_space}")
        check_count(projection_dim, "projection_dim", 1, AgentError)
        channels, self.channels_first = layout
        code = int(observation_space["code"].shape[0])
        super().__init__(observation_space, features_dim=int(projection_dim) + code + 1)
        self.body = ImageBody(backbone, weights, channels, augment)
        self.projection = nn.Sequential(nn.Linear(self.body.dim, int(projection_dim)), nn.ReLU())

    def project(self, images: torch.Tensor) -> torch.Tensor:
        """``h(I)`` ``[n, projection_dim]`` of images scaled to ``[0, 1]`` (augmented while
        training)."""
        x = images if self.channels_first else images.permute(0, 3, 1, 2)
        return self.projection(self.body(x))

    def forward(self, observations: dict[str, Any]) -> torch.Tensor:
        """``[h(I), c_t, t]`` for a batch of observations."""
        return HashQFeatures.join(self.project(observations["features"]), observations["code"],
                                  observations["t"])
