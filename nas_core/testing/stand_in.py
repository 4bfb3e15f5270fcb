"""Stand-ins for plugin tests: a tiny search space and a tiny synthetic data set.

Registered by the kit as the in-process plugin ``nas-testing`` (never autoloaded from an entry
point, so it does not appear in users' ``nas plugins``):

- space ``tiny``: stem 3x3 conv to 8 channels, three searchable layers (8->8, 8->16 stride 2,
  16->16) with the choices ``Identity`` / ``MB2_K3`` / ``MB3_K5`` (like NAS-Bench-Macro's three),
  a 1x1 head to 32 channels, global pool, linear. Input 8x8; 27 architectures.
- data set ``tiny-synthetic``: seeded in-memory uint8 images, 3x8x8, one random prototype per
  class plus noise -- learnable in a few dozen steps, built in milliseconds, no files.
"""

from __future__ import annotations

import torch
from pydantic import Field

from nas_core import hookimpl
from nas_core.config import Section
from nas_core.data.arrays import DataSplits, ImageArrays
from nas_core.registry import Registry
from nas_core.spaces.space import FixedLayer, LayerSpec, MBConvSpace, OpSpec

NAS_PLUGIN_API = "1"

TINY_CHOICES = (
    OpSpec.of("Identity", "skip"),
    OpSpec.of("MB2_K3", "mbconv", kernel=3, expansion=2, act="relu"),
    OpSpec.of("MB3_K5", "mbconv", kernel=5, expansion=3, act="relu"),
)


class TinySpaceOptions(Section):
    num_classes: int = Field(4, gt=1)
    width: int = Field(8, gt=0, description="channels of the first stage (the second has twice as many)")


def tiny_space(num_classes: int = 4, width: int = 8, ops=None) -> MBConvSpace:
    """The ``tiny`` stand-in space: 3 searchable layers, 3 choices each, 8x8 input."""
    layers = (
        LayerSpec(width, width, 1, TINY_CHOICES),
        LayerSpec(width, 2 * width, 2, TINY_CHOICES),
        LayerSpec(2 * width, 2 * width, 1, TINY_CHOICES),
    )
    space = MBConvSpace(
        name="tiny",
        in_channels=3,
        stem=(FixedLayer("conv", width, kernel=3, stride=1, act="relu"),),
        layers=layers,
        head=(FixedLayer("conv", 4 * width, kernel=1, act="relu"),),
        num_classes=num_classes,
        input_size=(8, 8),
    )
    if ops is not None:
        space.ops = ops
    return space


class SyntheticOptions(Section):
    num_classes: int = Field(4, gt=1)
    train_size: int = Field(256, gt=0)
    val_size: int = Field(64, gt=0)
    test_size: int = Field(0, ge=0)
    image_size: int = Field(8, gt=0)
    noise: float = Field(0.35, ge=0, description="noise amplitude relative to the prototypes' range")
    seed: int = 0


def synthetic_data(
    num_classes: int = 4, train_size: int = 256, val_size: int = 64, test_size: int = 0, image_size: int = 8, noise: float = 0.35, seed: int = 0
) -> DataSplits:
    """Class prototypes (random uint8 images, seeded) plus uniform noise; labels cycle over classes."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, 3, image_size, image_size, generator=generator)

    def split(size: int) -> ImageArrays:
        labels = torch.arange(size) % num_classes
        labels = labels[torch.randperm(size, generator=generator)]
        images = prototypes[labels] * (1 - noise) + torch.rand(size, 3, image_size, image_size, generator=generator) * noise
        return ImageArrays((images * 255).round().clamp(0, 255).to(torch.uint8), labels.to(torch.int64))

    train, val = split(train_size), split(val_size)
    test = split(test_size) if test_size else None
    return DataSplits(
        train, val, test, num_classes=num_classes, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        classes=tuple(f"class{i}" for i in range(num_classes)), augment=False,
    )


@hookimpl
def nas_register_search_spaces(registry: Registry) -> None:
    registry.register("tiny", tiny_space, options=TinySpaceOptions)


@hookimpl
def nas_register_datasets(registry: Registry) -> None:
    registry.register("tiny-synthetic", synthetic_data, options=SyntheticOptions)
