"""``cream-board``: the final architecture is the top board entry within the FLOPs interval.

No separate search: the board the ``cream`` teacher kept during training (restored from the
checkpoint by ``nas search``) is read best first and the first entry satisfying
``search.constraints`` is returned. With ``rescore: true`` the feasible entries are scored by
the run's evaluator instead and the best-scoring one is returned (K evaluations).
"""

from __future__ import annotations

from nas_core.api import Candidate, ComponentContext, NasError, SearchProblem, SearchResult, Searcher, Section

from nas_cream.settings import configured_teacher


class BoardSearcherOptions(Section):
    rescore: bool = False


class BoardSearcher(Searcher):
    """Top entry of the prioritized path board that satisfies the constraints."""

    def __init__(self, context: ComponentContext, options: BoardSearcherOptions):
        self.context = context
        self.rescore = options.rescore

    def check(self, context: ComponentContext) -> None:
        from nas_cream.teacher import CreamTeacher

        if not isinstance(context.peer("teacher"), CreamTeacher):
            raise NasError(f"searcher 'cream-board' needs teacher 'cream' (the board lives in its checkpoint state); the config's teacher is {configured_teacher(context)}")

    def search(self, problem: SearchProblem) -> SearchResult:
        teacher = self.context.peer("teacher")
        if not len(teacher.board):
            raise NasError("searcher 'cream-board': the board is empty (was the supernet trained past the cream warm-up?)")
        space = problem.space
        board = [(e, *space.complexity(e.arch)) for e in teacher.board]
        history = [Candidate(space.encode(e.arch), e.acc, macs, params) for e, macs, params in board]
        feasible = [(e, c) for (e, _, _), c in zip(board, history) if problem.feasible(e.arch)]
        if not feasible:
            c = problem.constraints
            raise NasError(
                f"searcher 'cream-board': none of the {len(board)} board entries is within the FLOPs / params constraints "
                f"(min_flops {c.min_flops}, max_flops {c.max_flops}; board MACs {min(m for _, m, _ in board):.4g}-{max(m for _, m, _ in board):.4g})"
            )
        if self.rescore:
            scores = problem.score_many([e.arch for e, _ in feasible])
            best = max(range(len(feasible)), key=lambda i: (scores[i], -i))  # ties: the higher board entry
            entry = feasible[best][0]
            return SearchResult(problem.candidate(entry.arch), list(problem.history), searcher="cream-board")
        return SearchResult(feasible[0][1], history, searcher="cream-board")
