"""NAS-Bench-Macro ground truth: CIFAR-10 accuracy of all 6,561 architectures."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from nas_core.checked_json import read_checked_json
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


class _Entry(BaseModel):
    """One architecture's entry in the benchmark's JSON (other keys are ignored)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    mean_acc: float = Field(ge=0, le=100)
    std: float = Field(ge=0)
    params: int = Field(gt=0)
    flops: int = Field(gt=0)
    test_acc: list[float]


_TABLE = TypeAdapter(dict[Annotated[str, Field(min_length=1)], _Entry])


@lru_cache(maxsize=4)
def load_table(path: str | None = None) -> dict[str, Record]:
    """{architecture string: Record}; ``path`` defaults to ``$NAS_DATA/nas-bench-macro/...``.

    The file is checked entry by entry after reading: anything but a mapping of architecture
    strings to records with finite accuracies is one error line naming the file and the entry."""
    file = Path(path).expanduser() if path else data_root() / DEFAULT_PATH
    if not file.is_file():
        raise DataError(f"{file}: NAS-Bench-Macro table not found (set NAS_DATA or rank.ground_truth)")
    table = read_checked_json(file, _TABLE, "a NAS-Bench-Macro table", DataError)
    if not table:
        raise DataError(f"{file}: not a NAS-Bench-Macro table (it has no entries)")
    return {key: Record(e.mean_acc, e.std, e.params, e.flops, tuple(e.test_acc)) for key, e in table.items()}


def lookup(table: dict[str, Record], arch: str, source: str | None = None) -> Record:
    """The table's record for ``arch``; an architecture it lacks is one error line."""
    try:
        return table[arch]
    except KeyError:
        where = source or "the ground-truth table"
        raise DataError(f"{where}: has no entry for architecture '{arch}' ({len(table)} entries; is it the table of this space?)") from None
