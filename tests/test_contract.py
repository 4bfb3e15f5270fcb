"""The engine-component contract: the context components get, hooks once per optimiser step,
plugins that fail to register leave nothing behind, and one component building another."""

from __future__ import annotations

import types

import pytest
import torch
from pydantic import Field

from nas_core.api import (
    ComponentConfig,
    ComponentContext,
    ConfigError,
    Evaluator,
    NasError,
    Sampler,
    Schedule,
    Section,
    StepContext,
    hookimpl,
)
from nas_core.testing import assert_lifecycle_order


def plugin_module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.NAS_PLUGIN_API = "1.1"
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


# ------------------------------------------------------------------------------------------
# Contract bug 1: micro-batches
# ------------------------------------------------------------------------------------------


class SliceWatcher:
    """Records what the per-path and per-step hooks see."""

    NAS_PLUGIN_API = "1.1"

    def __init__(self) -> None:
        self.slices: list[tuple[int, int, int]] = []
        self.steps: list[tuple[int, int]] = []

    @hookimpl
    def nas_extra_loss(self, ctx: StepContext, index: int):
        self.slices.append((ctx.step, ctx.micro_batch, ctx.batch.size))

    @hookimpl
    def nas_after_train_step(self, ctx: StepContext):
        self.steps.append((ctx.step, ctx.batch.size))


def test_micro_batches_fire_the_step_hooks_once_per_optimiser_step(nas_kit):
    watcher = SliceWatcher()
    result = nas_kit.train(
        {"train": {"max_steps": 3, "micro_batches": 2}, "sampler": {"name": "fairnas"}}, plugins={"watcher": watcher}
    )
    assert_lifecycle_order(result.recorder)
    assert result.recorder.count("nas_before_train_step") == 3
    assert result.recorder.count("nas_after_train_step") == 3
    # the step hooks see the whole step: 16 images, all three paths
    for call in result.recorder.of("nas_before_train_step") + result.recorder.of("nas_after_train_step"):
        assert call["ctx"].batch.size == 16 and len(call["ctx"].paths) == 3 and call["ctx"].micro_batch == 0
    assert watcher.steps == [(0, 16), (1, 16), (2, 16)]
    # per path and slice: 3 paths x 2 slices of 8 images per step
    assert watcher.slices == [(s, part, 8) for s in range(3) for part in (0, 1) for _ in range(3)]


# ------------------------------------------------------------------------------------------
# Contract bug 2: a plugin whose registration raises
# ------------------------------------------------------------------------------------------


class Half(Sampler):
    """Registered, then the plugin's registration fails."""


def test_a_plugin_whose_registration_raises_leaves_no_entries_and_no_hooks(nas_kit):
    fired = []

    def nas_register_samplers(registry):
        registry.register("half-registered", Half)
        raise RuntimeError("disk on fire")

    def nas_before_train_step(ctx):
        fired.append(ctx.step)

    broken = plugin_module(
        "broken_plugin", nas_register_samplers=hookimpl(nas_register_samplers), nas_before_train_step=hookimpl(nas_before_train_step)
    )
    with pytest.warns(UserWarning, match="plugin 'broken' is skipped: failed to register .nas_register_samplers failed: RuntimeError: disk on fire."):
        run, recorder = nas_kit.open({"train": {"max_steps": 2}}, plugins={"broken": broken})
    assert "half-registered" not in run.registries.samplers
    info = run.host.plugins["broken"]
    assert not info.loaded and info.registered == {} and "disk on fire" in info.error
    assert run.host.hooks_of("broken") == []
    from nas_core import commands

    commands.train(run)
    assert fired == [], "the skipped plugin's per-step hook still fired"
    assert recorder.count("nas_before_train_step") == 2
    with pytest.raises(ConfigError, match="unknown sampler 'half-registered'"):
        nas_kit.open({"sampler": {"name": "half-registered"}}, plugins={"broken": broken})


def test_a_plugin_needed_by_the_config_whose_registration_raises_stops_the_run(nas_kit):
    def nas_register_samplers(registry):
        raise RuntimeError("disk on fire")

    broken = plugin_module("broken_plugin", nas_register_samplers=hookimpl(nas_register_samplers))
    from nas_core.api import PluginError
    from nas_core.testing import KitHost

    with pytest.raises(PluginError, match="plugin 'broken': nas_register_samplers failed: RuntimeError: disk on fire"):
        KitHost({"broken": broken}, enable=["broken"], autoload=False)


# ------------------------------------------------------------------------------------------
# The context
# ------------------------------------------------------------------------------------------


def test_context_offers_schedule_space_and_peers_without_touching_data_until_asked(nas_kit):
    run, _ = nas_kit.open({"train": {"max_steps": None, "epochs": 1.5, "batch_size": 16}, "teacher": None})
    context = run.context
    assert isinstance(context, ComponentContext)
    assert context.space is run.space and context.seed == 0 and context.device == torch.device("cpu")
    assert "data" not in run.__dict__, "building the context decoded the data"
    schedule = context.schedule
    assert isinstance(schedule, Schedule)
    assert schedule.steps_per_epoch == 256 // 16 and schedule.total_steps == 24
    assert [schedule.epoch_of(s) for s in (0, 15, 16, 23)] == [0, 0, 1, 1]
    assert schedule.lr_at(0) == pytest.approx(0.05) and schedule.lr_at(12) == pytest.approx(0.025)
    assert context.peer("sampler") is run.sampler and context.peer("teacher") is None
    assert context.peers("regularizers") == [] and context.peers("teacher") == []
    with pytest.raises(ValueError, match="context.peers"):
        context.peer("regularizers")


def test_the_trainer_follows_the_context_schedule_and_tells_each_step_its_lr(nas_kit):
    config = {"train": {"max_steps": 5, "scheduler": {"name": "cosine", "warmup_steps": 2}}}
    result = nas_kit.train(config)
    schedule = result.run.context.schedule
    steps = result.recorder.of("nas_before_train_step")
    assert [c["ctx"].lr for c in steps] == [schedule.lr_at(s) for s in range(5)]
    assert [c["ctx"].epoch for c in steps] == [schedule.epoch_of(s) for s in range(5)]
    assert all(c["ctx"].context is result.run.context for c in steps)


class MemberOptions(Section):
    bonus: float = 0.0


class Nested(Section):
    weight: float = 1.0


class FusionOptions(Section):
    members: list[ComponentConfig] = Field(default_factory=list)
    nested: Nested = Field(default_factory=Nested)


class Member(Evaluator):
    """Scores an architecture by its identity count plus a bonus."""

    def __init__(self, context: ComponentContext, options: MemberOptions):
        self.space, self.bonus = context.space, options.bonus

    def evaluate(self, supernet, archs):
        return [self.space.num_identities(a) + self.bonus for a in archs]


class Fusion(Evaluator):
    """Sums its members' scores; the members are built from their config specs."""

    def __init__(self, context: ComponentContext, options: FusionOptions):
        self.nested = options.nested
        self.members = [context.build("evaluator", spec, where=f"evaluator.members.{i}") for i, spec in enumerate(options.members)]

    def evaluate(self, supernet, archs):
        columns = [m.evaluate(supernet, archs) for m in self.members]
        return [self.nested.weight * sum(col) for col in zip(*columns)]


def _fusion_plugin():
    def nas_register_evaluators(registry):
        registry.register("member", Member, options=MemberOptions)
        registry.register("fusion", Fusion, options=FusionOptions)

    return plugin_module("fusion_plugin", nas_register_evaluators=hookimpl(nas_register_evaluators))


def test_a_component_builds_another_from_a_config_spec_with_validated_options(nas_kit):
    plugin = _fusion_plugin()
    spec = {"name": "fusion", "nested": {"weight": 2.0}, "members": [{"name": "member", "bonus": 1.0}, {"name": "member"}]}
    run, _ = nas_kit.open({"evaluator": spec}, plugins={"fusion": plugin})
    fusion = run.evaluator
    assert isinstance(fusion.nested, Nested), "a nested options model arrived as a dict"
    assert [m.bonus for m in fusion.members] == [1.0, 0.0]
    assert fusion.evaluate(None, [(0, 0, 0), (1, 1, 1)]) == [2.0 * (3 + 1 + 3), 2.0 * (0 + 1 + 0)]
    built = nas_kit.build("evaluator", {"name": "member", "bonus": 3.0}, plugins={"fusion": plugin})
    assert isinstance(built, Member) and built.bonus == 3.0
    bad = {"name": "fusion", "members": [{"name": "member", "bonus": "lots"}, {"name": "nope"}]}
    with pytest.raises(ConfigError, match=r"evaluator\.members\.0\.bonus: Input should be a valid number"):
        nas_kit.open({"evaluator": bad}, plugins={"fusion": plugin})[0].check()
    # a member from a plugin this run does not load fails at the config check, not at search
    with pytest.raises(ConfigError, match=r"evaluator\.members\.0\.name: unknown evaluator 'naswot'"):
        nas_kit.open({"evaluator": {"name": "fusion", "members": [{"name": "naswot"}]}}, plugins={"fusion": plugin})[0].check()


class Chicken(Sampler):
    def __init__(self, context: ComponentContext, options: Section):
        context.peer("teacher")


class Egg:
    def __init__(self, context: ComponentContext, options: Section):
        context.peer("sampler")


def test_components_that_need_each_other_in_init_get_a_clear_error(nas_kit):
    def nas_register_samplers(registry):
        registry.register("chicken", Chicken)

    def nas_register_teachers(registry):
        registry.register("egg", Egg)

    plugin = plugin_module("loop", nas_register_samplers=hookimpl(nas_register_samplers), nas_register_teachers=hookimpl(nas_register_teachers))
    run, _ = nas_kit.open({"sampler": {"name": "chicken"}, "teacher": {"name": "egg"}}, plugins={"loop": plugin})
    with pytest.raises(NasError, match=r"components ask for each other while being built \(sampler -> teacher -> sampler\)"):
        run.check()


def test_the_compatibility_check_builds_every_component_and_the_supernet_but_reads_no_data(nas_kit):
    run, recorder = nas_kit.open({"sampler": {"name": "fairnas"}, "search": {"searcher": {"name": "nsga2"}}})
    run.check()
    assert "data" not in run.__dict__, "the check decoded the data set"
    assert "supernet" in run.__dict__ and set(run._slots) == {"sampler", "regularizers", "teacher", "evaluator", "searcher"}
    assert recorder.names() == ["nas_configure", "nas_space_built"]
