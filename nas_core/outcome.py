"""How good the network a search chose really is, by a benchmark's ground truth.

Only for spaces with a ground-truth table (NAS-Bench-Macro: all of its networks were trained),
and only to MEASURE a search, never to steer one. Under the search's constraints it enumerates
the feasible distinct networks and reports the chosen network's ground-truth accuracy, its
percentile among them, the regret to the best of them, and what naive picks that need no
supernet would have got: a random feasible network (its expected accuracy), the network with
the most MACs, and the deepest network (fewest identities) with the most MACs. A search that
does not beat those picks is not worth running; ``nas search`` prints this comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Mapping

import numpy as np

from nas_core.errors import ArchitectureError
from nas_core.ranking import distinct_networks
from nas_core.spaces.space import Arch, SearchSpace


@dataclass(frozen=True)
class Pick:
    """One chosen network, judged among the feasible ones."""

    name: str
    arch: str
    ground_truth: float
    percentile: float
    """Share (%) of feasible networks with lower ground truth (ties count half)."""
    regret: float
    """Best feasible ground truth minus this one's (accuracy points)."""


@dataclass(frozen=True)
class Outcome:
    """The chosen network and the naive picks under the same constraints."""

    feasible: int
    best_arch: str
    best_acc: float
    mean_acc: float
    chosen: Pick
    naive: tuple[Pick, ...]

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for a terminal."""
        c = self.chosen
        naive = ", ".join(f"{p.name} {p.ground_truth:.2f}% (pct {p.percentile:.0f})" for p in self.naive)
        return (
            f"chosen {c.arch}: ground truth {c.ground_truth:.2f}%, percentile {c.percentile:.1f} of {self.feasible} feasible "
            f"networks (best {self.best_arch} {self.best_acc:.2f}%, regret {c.regret:.2f}); naive picks: {naive}"
        )


def percentile_of(value: float, population: list[float]) -> float:
    """Share (%) of the population strictly below ``value``, ties counted half."""
    below = sum(v < value for v in population)
    ties = sum(v == value for v in population)
    return 100.0 * (below + 0.5 * ties) / len(population)


@dataclass(frozen=True)
class Feasible:
    """The distinct networks that satisfy a search's constraints and their ground truth."""

    archs: list[Arch]
    accs: list[float]

    @property
    def best(self) -> int:
        """Index of the most accurate feasible network."""
        return int(np.argmax(self.accs))


def feasible_networks(space: SearchSpace, truth: Mapping[str, float], feasible: Callable[[Arch], bool]) -> Feasible:
    """Every distinct network of ``space`` that satisfies ``feasible``, with its ground truth.

    ``truth`` maps an encoded network to its ground-truth accuracy (every network of the space).
    """
    everything = distinct_networks(space)
    if everything is None:
        raise ArchitectureError(f"space '{space.name}' is too large to enumerate its feasible networks")
    pool = [a for a in everything if feasible(a)]
    if not pool:
        raise ArchitectureError("no network of the space satisfies the search constraints")
    return Feasible(pool, [truth[space.encode(a)] for a in pool])


def search_outcome(space: SearchSpace, truth: Mapping[str, float], feasible: Callable[[Arch], bool], chosen: Arch) -> Outcome:
    """Judge ``chosen`` among the distinct networks of ``space`` that satisfy ``feasible``."""
    networks = feasible_networks(space, truth, feasible)
    pool, accs, best = networks.archs, networks.accs, networks.best

    def judge(name: str, arch: Arch) -> Pick:
        key = space.encode(space.canonical(arch))
        acc = truth[key]
        return Pick(name, key, acc, percentile_of(acc, accs), accs[best] - acc)

    macs = {a: space.complexity(a) for a in pool}
    most_macs = max(pool, key=lambda a: (macs[a], space.encode(a)))
    deepest = max(pool, key=lambda a: (-space.num_identities(a), macs[a], space.encode(a)))
    mean = float(np.mean(accs))
    random_pick = Pick("random (expected)", "", mean, 50.0, accs[best] - mean)
    return Outcome(
        feasible=len(pool), best_arch=space.encode(pool[best]), best_acc=accs[best], mean_acc=mean, chosen=judge("search", chosen),
        naive=(random_pick, judge("max MACs", most_macs), judge("fewest identities, then max MACs", deepest)),
    )
