"""Tiny COCO / Cityscapes / ADE20K-layout folders built from real sample images.

The fine-tuning configs read data sets in their official layouts. To run them end to end without
the real data sets (tests, the cost benchmark, checking an install), these functions lay out a
folder in each layout from the OpenMMLab projects' own test images
(``$NAS_DATA/openmmlab-fixtures``, see its README): real photos and real annotations, a handful
of them. Nothing is downloaded; images are linked or re-encoded, never altered in content.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)


def coco_layout(fixtures: Path, root: Path) -> Path:
    """``annotations/instances_{train,val}2017.json``, ``train2017/``, ``val2017/``.

    The fixture's instances file lists one real 512x288 photo four times; image 0 carries the
    trainable annotations (a bus box and polygon), images 1-3 repeat it with degenerate boxes
    that are edge cases for loaders. The layout keeps image 0 with its annotations that have a
    polygon (Mask R-CNN needs one per instance) and lists it twice (ids 0 and 1, two file
    names), so mmdet's aspect-ratio batch sampler forms the configured batches of two images.
    """
    coco = json.loads((fixtures / "coco" / "coco_sample_color.json").read_text())
    (image,) = [im for im in coco["images"] if im["id"] == 0]
    annotations = [a for a in coco["annotations"] if a["image_id"] == 0 and "segmentation" in a]
    stem, suffix = Path(image["file_name"]).stem, Path(image["file_name"]).suffix
    coco["images"], coco["annotations"] = [], []
    for copy in range(2):
        coco["images"].append({**image, "id": copy, "file_name": f"{stem}_{copy}{suffix}"})
        coco["annotations"] += [{**a, "id": len(coco["annotations"]) + k + 1, "image_id": copy} for k, a in enumerate(annotations)]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train2017", "val2017"):
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
        for entry in coco["images"]:
            _place(fixtures / "coco" / image["file_name"], root / split / entry["file_name"])
    return root


def cityscapes_layout(fixtures: Path, root: Path) -> Path:
    """``leftImg8bit/{train,val}/<city>/`` and ``gtFine/{train,val}/<city>/``: the fixture's
    real Cityscapes frame (256x128, labelTrainIds) in both splits."""
    source = fixtures / "cityscapes"
    for split in ("train", "val"):
        for kind in ("leftImg8bit", "gtFine"):
            for path in sorted((source / kind / "val").rglob("*.png")):
                _place(path, root / kind / split / path.relative_to(source / kind / "val"))
    return root


def ade20k_layout(fixtures: Path, root: Path) -> dict[str, np.ndarray]:
    """``images/{training,validation}/*.jpg`` + ``annotations/{training,validation}/*.png`` from
    the seg-custom photos and the Cityscapes frame; returns the labels mmseg must read back.

    ADE20K annotations are 0 = "other" (ignored) and 1..150 = classes, so labels are written
    shifted by one: a mask class c becomes c + 1 (Cityscapes' 255 ignore becomes 0).
    """
    from PIL import Image

    expected = {}
    sources = [(fixtures / "seg-custom" / "imgs" / f"{i:05d}_img.jpg", fixtures / "seg-custom" / "gts" / f"{i:05d}_gt.png") for i in range(5)]
    city = fixtures / "cityscapes"
    sources.append((next((city / "leftImg8bit" / "val").rglob("*_leftImg8bit.png")), next((city / "gtFine" / "val").rglob("*_labelTrainIds.png"))))
    for i, (image, mask) in enumerate(sources):
        split = "validation" if i in (1, 5) else "training"
        name = f"ADE_{'val' if split == 'validation' else 'train'}_{i + 1:08d}"
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        Image.open(image).convert("RGB").save(root / "images" / split / f"{name}.jpg", quality=95)
        labels = np.array(Image.open(mask)).astype(np.int64)
        ade = np.where(labels == 255, 0, labels + 1).astype(np.uint8)
        Image.fromarray(ade, mode="L").save(root / "annotations" / split / f"{name}.png")
        expected[name] = np.where(labels == 255, 255, labels)  # what reduce_zero_label must give back
    return expected


# The exports users hand to `nas finetune`, one per registered space: the quickstart's space and
# pick, and each plugin's published model, as (space options, architecture).
REFERENCE_EXPORTS = {
    "nas-bench-macro": ({"width": 0.25}, "20111121"),
    "scarlet-imagenet": ({}, "SCARLET-A"),
    "cream-imagenet": ({"preset": "cream-s"}, "0333133333333"),
    "pinas-resnest": ({}, "pinas-cls"),
}


def make_export(space: str, folder: Path) -> Path:
    """``folder/export/subnet.pt``: the space's reference architecture in the export format
    (``nas export``'s ``subnet.pt``: format, space, options, architecture, weights), with freshly
    initialised weights -- shapes and costs do not depend on the values."""
    from nas_core.api import SUBNET_FORMAT, SUBNET_NAME, build_space, save_atomic, validated_space_options

    options, arch_text = REFERENCE_EXPORTS[space]
    space_obj = build_space(space, options)
    arch = space_obj.parse(arch_text)
    subnet = space_obj.build_subnet(arch)
    record = {"format": SUBNET_FORMAT, "space": space, "space_options": validated_space_options(space, options), "arch": space_obj.encode(arch),
              "state_dict": {k: v.detach().cpu() for k, v in subnet.state_dict().items()}}
    (folder / "export").mkdir(parents=True, exist_ok=True)
    save_atomic(record, folder / "export" / SUBNET_NAME)
    return folder / "export"


LAYOUTS = {"coco": coco_layout, "cityscapes": cityscapes_layout, "ade20k": ade20k_layout}
TASK_LAYOUT = {"retinanet-coco": "coco", "mask-rcnn-coco": "coco", "upernet-ade20k": "ade20k", "upernet-cityscapes": "cityscapes"}


def build_layouts(fixtures: Path, root: Path) -> dict[str, Path]:
    """Every layout under ``root`` (``coco/``, ``cityscapes/``, ``ADEChallengeData2016/``)."""
    folders = {"coco": root / "coco", "cityscapes": root / "cityscapes", "ade20k": root / "ADEChallengeData2016"}
    for name, folder in folders.items():
        LAYOUTS[name](fixtures, folder)
    return folders
