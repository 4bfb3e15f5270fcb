"""What a searcher returns (and ``search.json``, where it is saved), and the problem it is handed."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from nas_core import distributed
from nas_core.checked_json import read_checked_json, write_json_atomic
from nas_core.config import ConstraintsConfig
from nas_core.errors import ArchitectureError, NasError
from nas_core.spaces.space import SearchSpace
from nas_core.spaces.supernet import Arch

if TYPE_CHECKING:
    from nas_core.latency.table import LatencyTable


@dataclass
class Candidate:
    arch: str
    score: float
    macs: int
    params: int
    latency_ms: float | None = None
    """Predicted by the run's latency table (None when the run has none)."""

    def as_dict(self) -> dict:
        return {"arch": self.arch, "score": self.score, "macs": self.macs, "params": self.params, "latency_ms": self.latency_ms}


@dataclass
class SearchResult:
    """The chosen architecture, every evaluated candidate, and (multi-objective) a Pareto front."""

    best: Candidate
    history: list[Candidate]
    pareto: list[Candidate] = field(default_factory=list)
    searcher: str = ""

    def as_dict(self) -> dict:
        return {
            "searcher": self.searcher,
            "best": self.best.as_dict(),
            "pareto": [c.as_dict() for c in self.pareto],
            "history": [c.as_dict() for c in self.history],
        }

    def save(self, path: Path) -> Path:
        return write_json_atomic(self.as_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> "SearchResult":
        """Read a saved ``search.json``, checked to be one: anything else is one error line
        naming the file and the first wrong part."""
        path = Path(path)
        if not path.is_file():
            raise NasError(f"{path}: no search result{' (it is a folder)' if path.is_dir() else ''}; pass --arch or run 'nas search' first")
        saved = read_checked_json(path, _SavedResult, "a search result", NasError)
        as_candidate = lambda c: Candidate(c.arch, c.score, c.macs, c.params)  # noqa: E731
        return cls(as_candidate(saved.best), [as_candidate(c) for c in saved.history], [as_candidate(c) for c in saved.pareto], saved.searcher)


class _SavedCandidate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    arch: str = Field(min_length=1)
    score: float
    macs: int = Field(ge=0)
    params: int = Field(ge=0)


class _SavedResult(BaseModel):
    """The structure of ``search.json`` (what :meth:`SearchResult.as_dict` writes)."""

    model_config = ConfigDict(extra="ignore")
    searcher: str = ""
    best: _SavedCandidate
    pareto: list[_SavedCandidate] = Field(default_factory=list)
    history: list[_SavedCandidate] = Field(default_factory=list)


class SearchProblem:
    """An objective over architectures with complexity constraints and a memo of scores.

    ``score(arch)`` evaluates canonical architectures once (equivalent architectures share a
    score); ``feasible(arch)`` checks the FLOPs / params / latency constraints. Latency is
    predicted by ``latency`` (a :class:`~nas_core.latency.table.LatencyTable`), which
    ``max_latency_ms`` and the ``latency`` objective need; the limit is checked against the
    prediction plus the table's safety margin (:meth:`LatencyTable.upper_ms`).
    """

    def __init__(self, space: SearchSpace, evaluate: Callable[[Sequence[Arch]], list[float]], constraints: ConstraintsConfig, seed: int,
                 latency: "LatencyTable | None" = None):
        self.space = space
        self._evaluate = evaluate
        self.constraints = constraints
        self.latency = latency
        self.rng = random.Random(seed)
        self.seed = seed
        self.cache: dict[Arch, float] = {}
        self.history: list[Candidate] = []
        self.check_satisfiable()
        self.check_jointly_satisfiable()

    def check_satisfiable(self) -> None:
        (min_macs, max_macs), (min_params, max_params) = self.space.bounds()
        c = self.constraints
        problems = []
        if c.max_flops is not None and c.max_flops < min_macs:
            problems.append(f"max_flops {c.max_flops:.4g} is below the smallest architecture's {min_macs:.4g}")
        if c.min_flops is not None and c.min_flops > max_macs:
            problems.append(f"min_flops {c.min_flops:.4g} is above the largest architecture's {max_macs:.4g}")
        if c.max_params is not None and c.max_params < min_params:
            problems.append(f"max_params {c.max_params:.4g} is below the smallest architecture's {min_params:.4g}")
        if c.min_params is not None and c.min_params > max_params:
            problems.append(f"min_params {c.min_params:.4g} is above the largest architecture's {max_params:.4g}")
        if c.min_flops is not None and c.max_flops is not None and c.min_flops > c.max_flops:
            problems.append("min_flops is larger than max_flops")
        if c.min_params is not None and c.max_params is not None and c.min_params > c.max_params:
            problems.append("min_params is larger than max_params")
        if c.max_latency_ms is not None:
            if self.latency is None:
                raise ArchitectureError("search.constraints.max_latency_ms needs a latency table (search.latency_table)")
            fastest = self.latency.bounds()[0] * self.latency.margin_factor
            if c.max_latency_ms < fastest:
                margin = f" with its {self.latency.margin_pct:.3g}% margin" if self.latency.margin_pct else ""
                problems.append(f"max_latency_ms {c.max_latency_ms:.4g} is below the fastest architecture's {fastest:.4g} ms (predicted by {self.latency.path}{margin})")
        if problems:
            raise ArchitectureError(f"search.constraints: impossible: {'; '.join(problems)} in space '{self.space.name}'")

    FEASIBILITY_SAMPLES = 20_000
    """Architectures :meth:`check_jointly_satisfiable` looks at (all of them in smaller spaces)."""

    def check_jointly_satisfiable(self) -> None:
        """Bounds each satisfiable alone can still exclude every architecture together (a MACs
        floor with a parameter or latency ceiling): look for one feasible architecture before searching --
        every one in a space of at most :attr:`FEASIBILITY_SAMPLES`, else that many random ones
        (own seeded generator: the search's random stream is not touched)."""
        c = self.constraints
        if all(v is None for v in c.model_dump().values()):
            return
        exhaustive = self.space.size <= self.FEASIBILITY_SAMPLES
        if exhaustive:
            archs = itertools.product(*(range(n) for n in self.space.num_choices))
        else:
            rng = random.Random(f"feasibility-{self.seed}")
            archs = (self.space.sample(rng) for _ in range(self.FEASIBILITY_SAMPLES))
        if any(self.feasible(a) for a in archs):
            return
        bounds = ", ".join(f"{k} {v:.4g}" for k, v in c.model_dump().items() if v is not None)
        looked = f"all {self.space.size} architectures" if exhaustive else f"{self.FEASIBILITY_SAMPLES} random architectures"
        raise ArchitectureError(
            f"search.constraints: impossible together: no architecture of space '{self.space.name}' satisfies {bounds} ({looked} checked)"
        )

    def feasible_history(self) -> list[Candidate]:
        """Evaluated candidates that satisfy the constraints; an error when the search found none."""
        found = [c for c in self.history if self.feasible(self.space.decode(c.arch))]
        if not found:
            raise ArchitectureError(
                f"search.constraints: the searcher evaluated {len(self.history)} architectures of space '{self.space.name}' "
                "and none satisfies the constraints; loosen them or search longer"
            )
        return found

    def violation(self, arch: Arch) -> float:
        """0 when feasible, else the summed relative amount by which constraints are broken."""
        macs, params = self.space.complexity(arch)
        c = self.constraints
        v = 0.0
        if c.max_flops is not None:
            v += max(0.0, macs / c.max_flops - 1)
        if c.min_flops:
            v += max(0.0, 1 - macs / c.min_flops)
        if c.max_params is not None:
            v += max(0.0, params / c.max_params - 1)
        if c.min_params:
            v += max(0.0, 1 - params / c.min_params)
        if c.max_latency_ms is not None:
            v += max(0.0, self.latency.upper_ms(arch) / c.max_latency_ms - 1)
        return v

    def latency_ms(self, arch: Arch) -> float | None:
        """Predicted latency (None without a latency table)."""
        return self.latency.predict_ms(arch) if self.latency is not None else None

    def feasible(self, arch: Arch) -> bool:
        return self.violation(arch) == 0.0

    def score_many(self, archs: Sequence[Arch]) -> list[float]:
        canon = [self.space.canonical(a) for a in archs]
        todo = sorted({a for a in canon if a not in self.cache})
        if todo:
            for arch, score in zip(todo, self._evaluate_sharded(todo)):
                self.cache[arch] = float(score)
                macs, params = self.space.complexity(arch)
                self.history.append(Candidate(self.space.encode(arch), float(score), macs, params, self.latency_ms(arch)))
        return [self.cache[a] for a in canon]

    def _evaluate_sharded(self, archs: list[Arch]) -> list[float]:
        """Under torchrun each rank scores every world_size-th candidate; scores are all-gathered
        so every rank holds the same cache (and so makes the same choices)."""
        count, me = distributed.world_size(), distributed.rank()
        mine = archs[me::count]
        local = [float(s) for s in self._evaluate(mine)] if mine else []
        gathered = distributed.all_gather_objects(local)
        scores: list[float] = [0.0] * len(archs)
        for r, part in enumerate(gathered):
            scores[r::count] = part
        return scores

    def score(self, arch: Arch) -> float:
        return self.score_many([arch])[0]

    def candidate(self, arch: Arch) -> Candidate:
        arch = self.space.canonical(arch)
        macs, params = self.space.complexity(arch)
        return Candidate(self.space.encode(arch), self.score(arch), macs, params, self.latency_ms(arch))

    def random_feasible(self, tries: int = 10_000) -> Arch:
        for _ in range(tries):
            arch = self.space.sample(self.rng)
            if self.feasible(arch):
                return arch
        raise ArchitectureError(f"search.constraints: no feasible architecture found in {tries} random samples of '{self.space.name}'")
