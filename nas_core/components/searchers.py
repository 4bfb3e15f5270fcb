"""Built-in searchers: random search and evolutionary search (pymoo's GA / NSGA-II).

Architectures are integer vectors (one gene per layer); crossover is uniform, mutation redraws
a gene, duplicates are eliminated. Constraints are inequality constraints ``G <= 0`` built from
:meth:`SearchProblem.violation`. Scores are cached per canonical architecture, so equivalent
architectures are evaluated once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.problem import Problem
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.core.mutation import Mutation
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize

from nas_core.components.base import Searcher
from nas_core.config import Section
from nas_core.context import ComponentContext
from nas_core.errors import ArchitectureError
from nas_core.search_result import Candidate, SearchProblem, SearchResult


class RandomOptions(Section):
    num_samples: int = Field(50, gt=0, le=10**6)


class RandomSearcher(Searcher):
    """Evaluate ``num_samples`` distinct feasible random architectures; return the best."""

    def __init__(self, context: ComponentContext, options: RandomOptions):
        self.options = options

    def search(self, problem: SearchProblem) -> SearchResult:
        seen, archs = set(), []
        for _ in range(self.options.num_samples * 50):
            if len(archs) == self.options.num_samples:
                break
            arch = problem.space.canonical(problem.random_feasible())
            if arch not in seen:
                seen.add(arch)
                archs.append(arch)
        problem.score_many(archs)
        best = max(archs, key=problem.score)
        return SearchResult(problem.candidate(best), list(problem.history), searcher="random")


class _ArchProblem(Problem):
    """pymoo view of a :class:`SearchProblem`: objectives to minimise and constraints."""

    def __init__(self, problem: SearchProblem, objectives: tuple[str, ...]):
        n = problem.space.num_choices
        super().__init__(n_var=len(n), n_obj=len(objectives), n_ieq_constr=1, xl=np.zeros(len(n)), xu=np.array(n) - 1, vtype=int)
        self.problem = problem
        self.objectives = objectives

    def _evaluate(self, X: np.ndarray, out: dict, *args: Any, **kwargs: Any) -> None:
        archs = [tuple(int(v) for v in np.clip(np.round(row), 0, self.xu)) for row in X]
        violations = np.array([self.problem.violation(a) for a in archs])
        feasible = [a for a, v in zip(archs, violations) if v == 0]
        scores = dict(zip(feasible, self.problem.score_many(feasible))) if feasible else {}
        columns = []
        for objective in self.objectives:
            if objective == "score":
                columns.append([-scores.get(a, -1e9) for a in archs])
            elif objective == "latency":
                columns.append([self._latency(a) for a in archs])
            else:
                index = 0 if objective == "macs" else 1
                columns.append([float(self.problem.space.complexity(a)[index]) for a in archs])
        out["F"] = np.array(columns, dtype=float).T
        out["G"] = violations.reshape(-1, 1)

    def _latency(self, arch: tuple[int, ...]) -> float:
        latency = self.problem.latency_ms(arch)
        if latency is None:
            raise ArchitectureError("the 'latency' objective needs a latency table (search.latency_table)")
        return latency


def run_pymoo(problem: SearchProblem, algorithm: Any, generations: int, objectives: tuple[str, ...]) -> Any:
    return minimize(_ArchProblem(problem, objectives), algorithm, ("n_gen", generations), seed=problem.seed, verbose=False)


class RedrawMutation(Mutation):
    """Each gene is redrawn uniformly from its layer's other choices with probability ``prob_gene``."""

    def __init__(self, prob_gene: float):
        super().__init__(prob=1.0)
        self.prob_gene = prob_gene

    def _do(self, problem: Problem, X: np.ndarray, *args: Any, random_state: np.random.Generator, **kwargs: Any) -> np.ndarray:
        X = np.round(X).astype(int)
        for row in X:
            for j in np.flatnonzero(random_state.random(len(row)) < self.prob_gene):
                n = int(problem.xu[j]) + 1
                if n > 1:
                    row[j] = (row[j] + random_state.integers(1, n)) % n
        return X


def genetic_operators(mutation_prob: float) -> dict[str, Any]:
    return {
        "sampling": IntegerRandomSampling(),
        "crossover": UniformCrossover(),
        "mutation": RedrawMutation(mutation_prob),
        "eliminate_duplicates": True,
    }


class EvolutionOptions(Section):
    population: int = Field(20, gt=1, le=10**5)
    generations: int = Field(10, gt=0, le=10**5)
    mutation_prob: float = Field(0.1, gt=0, le=1, description="per-gene probability of redrawing a choice")


class EvolutionSearcher(Searcher):
    """Single-objective evolution (pymoo GA) of the evaluator's score under constraints."""

    def __init__(self, context: ComponentContext, options: EvolutionOptions):
        self.options = options

    def search(self, problem: SearchProblem) -> SearchResult:
        o = self.options
        algorithm = GA(pop_size=o.population, **genetic_operators(o.mutation_prob))
        run_pymoo(problem, algorithm, o.generations, ("score",))
        feasible = problem.feasible_history()
        best = max(feasible, key=lambda c: c.score)
        return SearchResult(best, list(problem.history), searcher="evolution")


OBJECTIVES = ("score", "macs", "params", "latency")


class NSGA2Options(EvolutionOptions):
    objectives: list[str] = Field(default_factory=lambda: ["score", "macs", "params"], min_length=1,
                                  description="score (max), macs, params, latency (min; latency needs search.latency_table)")
    pick: str = Field("best_score", pattern="^(best_score|knee)$", description="which Pareto point becomes 'best'")

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, value: list[str]) -> list[str]:
        unknown = [o for o in value if o not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objective {unknown[0]!r} (available: {', '.join(OBJECTIVES)})")
        if "score" not in value or len(set(value)) != len(value):
            raise ValueError("objectives must include 'score' and name each objective once")
        return value


class NSGA2Searcher(Searcher):
    """Multi-objective evolution (pymoo NSGA-II): the Pareto front of score vs MACs / params."""

    def __init__(self, context: ComponentContext, options: NSGA2Options):
        self.options = options
        self.objectives = tuple(options.objectives)

    def search(self, problem: SearchProblem) -> SearchResult:
        o = self.options
        algorithm = NSGA2(pop_size=o.population, **genetic_operators(o.mutation_prob))
        run_pymoo(problem, algorithm, o.generations, self.objectives)
        front = pareto_front(problem.feasible_history(), self.objectives)
        cost = "latency" if "latency" in self.objectives else "macs"
        best = max(front, key=lambda c: c.score) if o.pick == "best_score" else knee_point(front, cost)
        return SearchResult(best, list(problem.history), pareto=front, searcher="nsga2")


def _objective_vector(c: Candidate, objectives: tuple[str, ...]) -> tuple[float, ...]:
    values = {"score": -c.score, "macs": float(c.macs), "params": float(c.params), "latency": c.latency_ms}
    return tuple(float(values[o]) for o in objectives)


def pareto_front(candidates: list[Candidate], objectives: tuple[str, ...]) -> list[Candidate]:
    """Non-dominated candidates (all objectives minimised), sorted by MACs."""
    vectors = [_objective_vector(c, objectives) for c in candidates]
    front = []
    for i, vi in enumerate(vectors):
        dominated = any(all(a <= b for a, b in zip(vj, vi)) and vj != vi for vj in vectors)
        if not dominated and vi not in [_objective_vector(c, objectives) for c in front]:
            front.append(candidates[i])
    return sorted(front, key=lambda c: (c.macs, -c.score))


def knee_point(front: list[Candidate], cost: str = "macs") -> Candidate:
    """The front point closest to the ideal after min-max normalising score and cost (MACs or latency)."""
    scores = np.array([c.score for c in front])
    macs = np.array([c.latency_ms if cost == "latency" else c.macs for c in front], dtype=float)
    ns = (scores.max() - scores) / max(1e-12, np.ptp(scores))
    nm = (macs - macs.min()) / max(1e-12, np.ptp(macs))
    return front[int(np.argmin(ns**2 + nm**2))]
