"""Admission rules of the prioritized path board, its order, and its checkpoint form."""

from __future__ import annotations

import io

import pytest
import torch

from nas_cream.board import BoardEntry, PathBoard, admits


def entry(arch, acc, flops, step=0, k=2, classes=4):
    torch.manual_seed(step)
    return BoardEntry(tuple(arch), acc, flops, torch.randn(k, 3, 8, 8), torch.softmax(torch.randn(k, classes), 1), step)


def full_board(rule="gap-or-flops", gap=5.0):
    board = PathBoard(size=3, gap=gap, rule=rule)
    for i, (acc, flops) in enumerate([(60.0, 100), (50.0, 200), (40.0, 300)]):
        assert board.offer(entry((i, 0, 0), acc, flops, step=i))
    return board


def test_not_full_board_admits_anything():
    board = PathBoard(size=3)
    assert board.offer(entry((0, 0, 0), 1.0, 10**9))
    assert admits(board.entries, -1.0, 10**9, 3, 5.0, "gap")
    assert len(board) == 1


@pytest.mark.parametrize(
    "acc, flops, rule, admitted",
    [
        (45.1, 999, "gap", True),  # beats the worst (40) by more than the gap
        (45.0, 999, "gap", False),  # exactly the gap is not more than the gap
        (44.0, 100, "gap", False),  # fewer FLOPs do not count under the accuracy-gap rule
        (44.0, 100, "gap-or-flops", True),  # better and cheaper than the worst
        (44.0, 300, "gap-or-flops", False),  # better but not cheaper
        (40.0, 100, "gap-or-flops", False),  # cheaper but not better
        (39.0, 1, "gap-or-flops", False),
        (45.1, 999, "gap-or-flops", True),
    ],
)
def test_admission_cases_on_a_full_board(acc, flops, rule, admitted):
    board = full_board(rule)
    assert admits(board.entries, acc, flops, 3, 5.0, rule) is admitted
    changed = board.offer(entry((9, 9, 9), acc, flops, step=9))
    assert changed is admitted
    archs = [e.arch for e in board]
    assert len(board) == 3
    assert ((9, 9, 9) in archs) is admitted
    assert ((2, 0, 0) in archs) is not admitted  # the worst entry is the one dropped


def test_board_sorted_best_first_with_ties_by_flops_then_newer():
    board = PathBoard(size=5, gap=0.0)
    board.offer(entry((0,), 50.0, 200, step=0))
    board.offer(entry((1,), 70.0, 300, step=1))
    board.offer(entry((2,), 50.0, 100, step=2))
    board.offer(entry((3,), 50.0, 100, step=3))
    assert [e.arch for e in board] == [(1,), (3,), (2,), (0,)]


def test_same_path_is_refreshed_not_duplicated():
    board = full_board()
    new = entry((1, 0, 0), 70.0, 200, step=7)
    assert board.offer(new)
    assert [e.arch for e in board] == [(1, 0, 0), (0, 0, 0), (2, 0, 0)]
    assert board[0] is new and len(board) == 3


def test_equivalent_archs_share_an_entry_through_the_key():
    board = PathBoard(size=3, key=lambda arch: tuple(sorted(arch)))
    board.offer(entry((0, 1), 10.0, 5))
    board.offer(entry((1, 0), 20.0, 5, step=1))
    assert [e.arch for e in board] == [(1, 0)]


def test_state_round_trips_through_weights_only_load():
    board = full_board()
    buffer = io.BytesIO()
    torch.save({"board": board.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = PathBoard(size=3)
    restored.load_state_dict(state["board"])
    for a, b in zip(board, restored):
        assert (a.arch, a.acc, a.flops, a.step) == (b.arch, b.acc, b.flops, b.step)
        assert torch.equal(a.images, b.images) and torch.equal(a.probs, b.probs)
