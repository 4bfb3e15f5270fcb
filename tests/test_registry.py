import pytest

from nas_core.errors import NasError
from nas_core.plugins import PluginHost
from nas_core.registry import Registry, RegistryError


def test_duplicate_name_names_the_first_source():
    registry = Registry("sampler")
    registry.register("uniform", object, source="plugin 'a'")
    with pytest.raises(RegistryError, match=r"sampler 'uniform' registered twice: first by plugin 'a', again by plugin 'b'"):
        registry.register("uniform", object, source="plugin 'b'")


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
    assert info.registered["samplers"] == ["fairnas", "uniform"]
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
