import pytest

from nas_core.errors import NasError
from nas_core.plugins import PluginHost
from nas_core.registry import Registry, RegistryError


def _as(registry: Registry, plugin: str) -> Registry:
    registry.current_plugin, registry.current_source = plugin, f"plugin '{plugin}'"
    return registry


def test_one_plugin_registering_a_name_twice_is_an_error_naming_both_registrations():
    registry = _as(Registry("sampler"), "a")
    registry.register("uniform", object)
    with pytest.raises(RegistryError, match=r"sampler 'uniform' registered twice: first by plugin 'a', again by plugin 'a'"):
        registry.register("uniform", object)


def test_a_name_two_plugins_register_is_ambiguous_only_where_used_and_qualified_names_pick_one():
    registry = Registry("sampler")
    first, second = type("First", (), {}), type("Second", (), {})
    _as(registry, "a").register("uniform", first)
    _as(registry, "b").register("uniform", second)
    _as(registry, "b").register("fairnas", object)
    assert registry.get("a:uniform") is first and registry.get("b:uniform") is second
    assert registry.get("fairnas") is object and registry.get("b:fairnas") is object
    with pytest.raises(RegistryError) as info:
        registry.get("uniform")
    assert str(info.value) == "sampler 'uniform' is ambiguous: registered by plugin 'a' and plugin 'b'; write 'a:uniform' or 'b:uniform'"
    assert registry.list() == ["a:uniform", "b:uniform", "fairnas"]
    assert set(registry.clashes()) == {"uniform"}
    with pytest.raises(RegistryError, match="unknown sampler 'c:uniform'"):
        registry.get("c:uniform")
    registry.remove_plugin("b")
    assert registry.get("uniform") is first and registry.list() == ["uniform"] and not registry.clashes()


def test_unknown_name_suggests_closest_and_lists_all():
    registry = Registry("sampler")
    for name in ("uniform", "fairnas"):
        registry.register(name, object)
    with pytest.raises(RegistryError) as info:
        registry.get("fairnass")
    message = str(info.value)
    assert "did you mean 'fairnas'" in message
    assert "available: fairnas, uniform" in message
    assert "\n" not in message


def test_list_with_wildcards():
    registry = Registry("searcher")
    for name in ("random", "evolution", "nsga2"):
        registry.register(name, object)
    assert registry.list() == ["evolution", "nsga2", "random"]
    assert registry.list("*o*") == ["evolution", "random"]
    assert registry.list("n*") == ["nsga2"]


def test_builtin_components_register_through_the_hooks():
    host = PluginHost(autoload=False)
    info = host.plugins["builtin"]
    assert info.registered["samplers"] == ["fairnas", "sandwich", "uniform"]
    assert info.registered["regularizers"] == ["ranking-loss"]
    assert info.registered["evaluators"] == ["accuracy", "depth", "layer-additive", "macs", "params", "rank-fusion"]
    assert "nas-bench-macro" in info.registered["search_spaces"]
    entry = host.registries.samplers.entry("fairnas")
    assert entry.source.startswith("plugin 'builtin'")


@pytest.mark.parametrize("kind", ["search_spaces", "samplers", "evaluators", "searchers", "datasets", "ops"])
def test_every_registered_entry_is_documented(kind):
    host = PluginHost()
    registry = host.registries.all()[kind]
    assert len(registry) > 0
    for entry in registry:
        assert entry.doc, f"{kind} '{entry.name}' from {entry.source} has no docstring"


def test_registry_error_is_a_user_error():
    assert issubclass(RegistryError, NasError)
