"""Path-sampling priors and the board searcher."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from nas_core.api import NasError

from nas_cream.board import BoardEntry
from nas_cream.sampler import PAPER_PRIOR


def test_uniform_prior_covers_every_op(nas_kit):
    run, _ = nas_kit.open({"plugins": {"enable": ["cream"]}, "sampler": {"name": "cream"}})
    counts = Counter(c for _ in range(600) for c in run.sampler.sample(0)[0])
    # Margin: 1800 uniform draws over 3 ops give 600 +- 20 per op; 450 is 7.5 standard deviations
    # below. The draws come from Python's seeded Mersenne Twister, the same on every machine and
    # thread count (observed 570).
    print(f"[margin] rarest op count of 1800 draws: observed {min(counts.values())}, bound 450")
    assert set(counts) == {0, 1, 2} and min(counts.values()) > 450


def test_uniform_prior_draws_the_same_paths_as_spos(nas_kit):
    cream, _ = nas_kit.open({"plugins": {"enable": ["cream"]}, "sampler": {"name": "cream"}, "seed": 3})
    spos, _ = nas_kit.open({"sampler": {"name": "uniform"}, "seed": 3})
    assert [cream.sampler.sample(i) for i in range(20)] == [spos.sampler.sample(i) for i in range(20)]


def test_categorical_prior_follows_its_probabilities(nas_kit):
    run, _ = nas_kit.open({"plugins": {"enable": ["cream"]}, "sampler": {"name": "cream", "prior": "categorical", "probs": [0.1, 0.2, 0.7]}})
    layer0 = Counter(run.sampler.sample(0)[0][0] for _ in range(3000))
    print(f"[margin] categorical frequency error: observed {max(abs(layer0[i] / 3000 - p) for i, p in enumerate([0.1, 0.2, 0.7])):.3g}, bound 0.03")
    assert [layer0[i] / 3000 for i in range(3)] == pytest.approx([0.1, 0.2, 0.7], abs=0.03)
    assert PAPER_PRIOR == (0.05, 0.2, 0.05, 0.5, 0.05, 0.15) and sum(PAPER_PRIOR) == pytest.approx(1.0)


def test_board_frequency_prior_uses_the_board_and_uniform_while_empty(nas_kit, cream_config):
    cream_config["sampler"] = {"name": "cream", "prior": "board", "smoothing": 0.5}
    run, _ = nas_kit.open(cream_config)
    assert run.sampler.layer_weights() == [[1.0] * 3] * 3
    for step, arch in enumerate([(2, 0, 1), (2, 1, 1), (2, 2, 1)]):
        run.teacher.board.offer(BoardEntry(arch, 50.0 + step, 10, torch.zeros(4, 3, 8, 8), torch.full((4, 4), 0.25), step))
    assert run.sampler.layer_weights() == [[0.5, 0.5, 3.5], [1.5, 1.5, 1.5], [0.5, 3.5, 0.5]]
    first = Counter(run.sampler.sample(0)[0][0] for _ in range(2000))
    print(f"[margin] board-prior frequency error: observed {abs(first[2] / 2000 - 3.5 / 4.5):.3g}, bound 0.04")
    assert first[2] / 2000 == pytest.approx(3.5 / 4.5, abs=0.04)


def test_sampler_state_round_trips(nas_kit):
    run, _ = nas_kit.open({"plugins": {"enable": ["cream"]}, "sampler": {"name": "cream", "prior": "categorical", "probs": [1, 1, 2]}})
    state = run.sampler.state_dict()
    ahead = [run.sampler.sample(i) for i in range(5)]
    run.sampler.load_state_dict(state)
    assert [run.sampler.sample(i) for i in range(5)] == ahead


def test_search_returns_the_top_board_entry_within_the_flops_interval(nas_kit, cream_config):
    cream_config["search"] = {"searcher": {"name": "cream-board"}}
    result = nas_kit.train_and_search(cream_config)
    run, best = result.run, result.search.best
    board = run.teacher.board
    assert len(board) == 4 and best.arch == run.space.encode(board[0].arch) and best.score == board[0].acc
    # a FLOPs interval that excludes the top entry picks the best entry inside it
    cheapest = min(board, key=lambda e: e.flops)
    cream_config["search"]["constraints"] = {"max_flops": cheapest.flops}
    limited = nas_kit.search({**cream_config, "run_dir": str(run.run_dir)})
    inside = [e for e in board if e.flops <= cheapest.flops]
    assert limited.search.best.arch == run.space.encode(inside[0].arch)
    # rescoring with the evaluator picks among the board entries
    cream_config["search"] = {"searcher": {"name": "cream-board", "rescore": True}}
    rescored = nas_kit.search({**cream_config, "run_dir": str(run.run_dir)})
    assert rescored.search.best.arch in {run.space.encode(e.arch) for e in board}


def test_search_without_the_cream_teacher_is_an_error(nas_kit):
    with pytest.raises(NasError, match="searcher 'cream-board' needs teacher 'cream'"):
        nas_kit.train_and_search({"plugins": {"enable": ["cream"]}, "search": {"searcher": {"name": "cream-board"}}})
    assert not list(nas_kit.root.rglob("checkpoint.pt")), "the impossible search was found out only after training"


@pytest.mark.parametrize("section, expected", [({"warmup_steps": 7}, 7), ({"warmup_epochs": 0.5}, 8), ({}, 40 // 6),
                                                ({"warmup_steps": 3, "warmup_epochs": 2}, 3)])
def test_warm_up_end_from_the_cream_section(nas_kit, section, expected):
    from nas_cream.settings import warmup_end

    run, _ = nas_kit.open({"plugins": {"enable": ["cream"]}, "cream": section, "train": {"max_steps": 40}})
    assert warmup_end(run.context) == expected  # tiny data: 256 images / batch 16 = 16 steps per epoch


def test_unknown_cream_setting_is_a_config_error(nas_kit):
    from nas_core.api import ConfigError

    with pytest.raises(ConfigError, match="cream.warmup: unknown key"):
        nas_kit.open({"plugins": {"enable": ["cream"]}, "cream": {"warmup": 3}})
