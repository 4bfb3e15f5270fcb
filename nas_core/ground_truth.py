"""NAS-Bench-Macro ground truth: CIFAR-10 accuracy of all 6,561 architectures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nas_core.config import data_root
from nas_core.errors import DataError

DEFAULT_PATH = "nas-bench-macro/nas-bench-macro_cifar10.json"


@dataclass(frozen=True)
class Record:
    mean_acc: float
    std: float
    params: int
    flops: int
    test_acc: tuple[float, ...]


@lru_cache(maxsize=4)
def load_table(path: str | None = None) -> dict[str, Record]:
    """{architecture string: Record}; ``path`` defaults to ``$NAS_DATA/nas-bench-macro/...``."""
    file = Path(path).expanduser() if path else data_root() / DEFAULT_PATH
    if not file.is_file():
        raise DataError(f"{file}: NAS-Bench-Macro table not found (set NAS_DATA or rank.ground_truth)")
    try:
        raw = json.loads(file.read_text())
        return {
            key: Record(float(v["mean_acc"]), float(v["std"]), int(v["params"]), int(v["flops"]), tuple(map(float, v["test_acc"])))
            for key, v in raw.items()
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{file}: not a NAS-Bench-Macro table ({exc})") from None
