"""NAS-Bench-Macro space: exact params/MACs for all 6,561 encodings, canonical forms, supernet = subnet."""

import random

import pytest
import torch

from nas_core.errors import ArchitectureError
from nas_core.ground_truth import load_table
from nas_core.spaces.nas_bench_macro import nas_bench_macro
from nas_core.spaces.space import count_macs, count_params


@pytest.fixture(scope="module")
def space():
    return nas_bench_macro()


def test_every_encoding_matches_benchmark_params_and_macs(space, shared_data):
    table = load_table()
    assert len(table) == 6561
    mismatches = [k for k, rec in table.items() if space.complexity(space.decode(k)) != (rec.flops, rec.params)]
    assert mismatches == []


def test_table_equals_whole_network_count(space, shared_data):
    """The per-op table is additive: whole standalone subnets, counted directly, agree."""
    table = load_table()
    rng = random.Random(0)
    for key in rng.sample(sorted(table), 25) + ["00000000", "22222222", "11111111"]:
        arch = space.decode(key)
        with torch.device("meta"):
            subnet = space.build_subnet(arch)
            x = torch.empty(1, 3, 32, 32)
        assert count_params(subnet) == table[key].params
        assert count_macs(subnet.eval(), x) == table[key].flops


def test_canonical_forms(space, shared_data):
    table = load_table()
    canon = {space.canonical(space.decode(k)) for k in table}
    assert len(canon) == 3969
    # identities inside a stage move to the end; a stage's first layer is never moved
    assert space.encode(space.canonical(space.decode("10201022"))) == "10210022"
    for key in table:
        assert table[space.encode(space.canonical(space.decode(key)))].mean_acc == table[key].mean_acc


@pytest.mark.parametrize("bad, why", [("1111111", "has 7 characters"), ("111111111", "has 9 characters"), ("1111311x", "position 4 is '3'"), ("11a11111", "position 2")])
def test_bad_architecture_strings(space, bad, why):
    with pytest.raises(ArchitectureError, match=why):
        space.decode(bad)


def test_supernet_path_equals_extracted_subnet(space):
    small = nas_bench_macro(width=0.25)
    torch.manual_seed(0)
    supernet = small.build_supernet().eval()
    x = torch.randn(4, 3, 32, 32)
    for key in ("01201212", "22222222", "00000000"):
        arch = small.decode(key)
        subnet = supernet.extract(arch).eval()
        assert torch.equal(supernet(x, arch), subnet(x))
        rebuilt = small.build_subnet(arch)
        rebuilt.load_state_dict(subnet.state_dict())
        assert torch.equal(rebuilt.eval()(x), subnet(x))
        shared = supernet.path(arch)  # the same network without a copy: the supernet's own parameters
        assert torch.equal(shared(x), subnet(x))
        supernet_params = {id(p) for p in supernet.parameters()}
        assert {id(p) for p in shared.parameters()} <= supernet_params
        assert not {id(p) for p in subnet.parameters()} & supernet_params


def test_width_multiplier_shrinks_channels():
    assert [l.out_channels for l in nas_bench_macro(width=0.25).layers] == [16, 16, 32, 32, 32, 64, 64, 64]
    assert nas_bench_macro(width=0.5).complexity((1,) * 8)[1] < nas_bench_macro().complexity((1,) * 8)[1]


def test_feature_info(space):
    info = space.feature_info()
    assert [(f.layer, f.channels, f.stride) for f in info] == [(1, 64, 2), (4, 128, 4), (7, 256, 8)]
