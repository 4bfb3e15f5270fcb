"""Third-party plugins: real packages pip-installed (into a private --target folder) and found
through the entry-point group; enabled, disabled, validated, and isolated when broken."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nas_core import __version__
from nas_test_helpers import REPO, nas, tiny_overrides

GOOD = '''
import random

from pydantic import Field
from nas_core.api import Sampler, Section, hookimpl

NAS_PLUGIN_API = "1.1"


class ThrowawayOptions(Section):
    strength: int = Field(1, ge=0)


class RepeatOptions(Section):
    repeat: int = Field(2, gt=0)


class RepeatSampler(Sampler):
    """Uniform paths, each used for ``repeat`` consecutive steps."""

    def __init__(self, context, options):
        self.space = context.space
        self.rng = random.Random(context.seed)
        self.repeat = options.repeat
        self.last = None

    def sample(self, step):
        if self.last is None or step % self.repeat == 0:
            self.last = [self.space.sample(self.rng)]
        return self.last


@hookimpl
def nas_register_samplers(registry):
    registry.register("repeat", RepeatSampler, options=RepeatOptions)


@hookimpl
def nas_register_config_sections(registry):
    registry.register("throwaway", ThrowawayOptions)
'''

FUSION = '''
from pydantic import Field
from nas_core.api import ComponentConfig, Evaluator, Section, hookimpl

NAS_PLUGIN_API = "1.1"
NAS_PLUGIN_REQUIRES = ["zero_cost"]


class FusionOptions(Section):
    members: list[ComponentConfig] = Field(default_factory=list)


class Fusion(Evaluator):
    """Sums the scores of member evaluators (zero-cost proxies)."""

    def __init__(self, context, options):
        self.members = [context.build("evaluator", m, where=f"evaluator.members.{i}") for i, m in enumerate(options.members)]

    def evaluate(self, supernet, archs):
        return [sum(column) for column in zip(*(m.evaluate(supernet, archs) for m in self.members))]


@hookimpl
def nas_register_evaluators(registry):
    registry.register("fusion", Fusion, options=FusionOptions)
'''

PLUGINS = {
    "throwaway_good": GOOD,
    "throwaway_fusion": FUSION,
    "throwaway_broken": "import no_such_module_anywhere\n",
    "throwaway_typo": "from nas_core import hookimpl\n\n@hookimpl\ndef nas_register_sampler(registry):\n    pass\n",
    "throwaway_dup": "from nas_core import hookimpl\n\n@hookimpl\ndef nas_register_samplers(registry):\n    registry.register('uniform', object)\n",
    "throwaway_future": "NAS_PLUGIN_API = '7'\n",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """pip-install five throwaway plugin packages into a folder used as PYTHONPATH."""
    src = tmp_path_factory.mktemp("plugin-src")
    target = tmp_path_factory.mktemp("site")
    for name, code in PLUGINS.items():
        pkg = src / name
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
        (pkg / name / "plugin.py").write_text(code)
        dist = name.replace("_", "-")
        (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{dist}"
            version = "0.3.1"
            [project.entry-points."nas_core.plugins"]
            {name} = "{name}.plugin"
            [tool.setuptools]
            packages = ["{name}"]
        """))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target),
         *[str(src / n) for n in PLUGINS]],
        check=True, capture_output=True,
    )
    return target


def env(site: Path, allow: str | None = None, **extra: str) -> dict:
    out = {"PYTHONPATH": str(site), **extra}
    if allow is not None:
        out["NAS_PLUGINS"] = allow
    return out


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plugin.yaml"
    path.write_text(text)
    return str(path)


def test_discovered_and_listed_with_version_and_components(site):
    proc = nas("plugins", env=env(site, "throwaway_good,throwaway_broken,throwaway_typo"), check=True)
    assert "throwaway_good" in proc.stdout and "0.3.1" in proc.stdout and "repeat" in proc.stdout
    assert "throwaway_broken" in proc.stdout and "ModuleNotFoundError" in proc.stdout
    assert "throwaway_typo" in proc.stdout and "unknown hook" in proc.stdout
    assert "warning: plugin 'throwaway_broken' failed to load and is skipped" in proc.stderr
    listed = nas("list", "samplers", env=env(site, "throwaway_good,throwaway_broken"), check=True)
    assert "repeat" in listed.stdout and "throwaway_good" in listed.stdout


def test_enabled_by_config_used_in_a_run_and_recorded(site, tmp_path, shared_data):
    config = write_config(tmp_path, "plugins: {enable: [throwaway_good]}\nsampler: {name: repeat, repeat: 3}\nthrowaway: {strength: 4}\n")
    run_dir = tmp_path / "run"
    overrides = [o for o in tiny_overrides(run_dir, "train.max_steps=3") if not o.startswith("evaluator")]
    nas("train", config, *overrides, env=env(site, "", NAS_DISABLE_PLUGIN_AUTOLOAD="1"), check=True)
    meta = json.loads((run_dir / "metadata-train.json").read_text())
    assert {"name": "throwaway_good", "version": "0.3.1"}.items() <= next(p for p in meta["plugins"] if p["name"] == "throwaway_good").items()
    assert meta["config"]["throwaway"] == {"strength": 4}
    assert meta["config"]["sampler"] == {"name": "repeat", "repeat": 3}


def test_plugin_section_is_validated_by_the_plugin_model(site, tmp_path):
    config = write_config(tmp_path, "plugins: {enable: [throwaway_good]}\nthrowaway: {strength: -1}\n")
    proc = nas("config", "check", config, env=env(site, ""))
    assert proc.returncode == 2 and f"{config}: throwaway.strength: Input should be greater than or equal to 0" in proc.stderr
    config = write_config(tmp_path, "plugins: {enable: [throwaway_good]}\nthrowaway: {strenght: 1}\n")
    assert "throwaway.strenght: unknown key" in nas("config", "check", config, env=env(site, "")).stderr


def test_broken_plugin_does_not_stop_others_unless_needed(site, tmp_path):
    config = write_config(tmp_path, "sampler: {name: repeat}\n")
    assert nas("config", "check", config, env=env(site, "throwaway_good,throwaway_broken")).returncode == 0
    needed = write_config(tmp_path, "plugins: {enable: [throwaway_broken]}\n")
    proc = nas("config", "check", needed, env=env(site, ""))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: plugin 'throwaway_broken' failed to load: ModuleNotFoundError: No module named 'no_such_module_anywhere'"
    )


def test_misspelled_hook_fails_loudly_when_enabled(site, tmp_path):
    config = write_config(tmp_path, "plugins: {enable: [throwaway_typo]}\n")
    proc = nas("config", "check", config, env=env(site, ""))
    assert proc.returncode == 2 and "plugin 'throwaway_typo' is invalid" in proc.stderr and "nas_register_sampler" in proc.stderr


def test_a_name_registered_by_two_plugins_warns_and_stops_only_a_run_that_uses_it(site, tmp_path):
    proc = nas("list", "samplers", env=env(site, "throwaway_dup", COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr
    assert "sampler 'uniform' is registered by plugin 'builtin'" in proc.stderr
    assert "and plugin 'throwaway_dup' (throwaway-dup 0.3.1)" in proc.stderr
    assert "builtin:uniform" in proc.stdout and "throwaway_dup:uniform" in proc.stdout
    unaffected = write_config(tmp_path, "sampler: {name: fairnas}\n")
    assert nas("config", "check", unaffected, env=env(site, "throwaway_dup")).returncode == 0
    uses = write_config(tmp_path, "sampler: {name: uniform}\n")
    proc = nas("config", "check", uses, env=env(site, "throwaway_dup"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {uses}: sampler.name: sampler 'uniform' is ambiguous: registered by plugin 'builtin' (nas-core {__version__}) and "
        "plugin 'throwaway_dup' (throwaway-dup 0.3.1); write 'builtin:uniform' or 'throwaway_dup:uniform'"
    )
    qualified = write_config(tmp_path, "sampler: {name: 'builtin:uniform'}\n")
    assert nas("config", "check", qualified, env=env(site, "throwaway_dup")).returncode == 0


def test_incompatible_api_version_rejected_naming_both(site, tmp_path):
    config = write_config(tmp_path, "plugins: {enable: [throwaway_future]}\n")
    proc = nas("config", "check", config, env=env(site, ""))
    assert proc.returncode == 2
    assert "plugin 'throwaway_future' needs plugin API 7, but nas-core" in proc.stderr and "provides plugin API 1.2" in proc.stderr


def test_disable_list_and_autoload_switch(site, tmp_path):
    uses = write_config(tmp_path, "sampler: {name: repeat}\n")
    assert nas("config", "check", uses, env=env(site, "throwaway_good")).returncode == 0
    off = nas("config", "check", uses, env=env(site, "throwaway_good", NAS_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert off.returncode == 2 and "unknown sampler 'repeat'" in off.stderr
    disabled = write_config(tmp_path, "plugins: {disable: [throwaway_good]}\nsampler: {name: repeat}\n")
    assert "unknown sampler 'repeat'" in nas("config", "check", disabled, env=env(site, "throwaway_good")).stderr
    both = write_config(tmp_path, "plugins: {enable: [throwaway_good], disable: [throwaway_good]}\n")
    assert "both enabled and disabled" in nas("config", "check", both, env=env(site, "")).stderr


def test_unknown_enabled_plugin_lists_installed(site, tmp_path):
    config = write_config(tmp_path, "plugins: {enable: [throwaway_goood]}\n")
    proc = nas("config", "check", config, env=env(site, ""))
    assert proc.returncode == 2 and "not installed (installed plugins:" in proc.stderr and "throwaway_good" in proc.stderr


def test_a_plugin_brings_the_plugins_it_needs_and_is_refused_without_them(site, tmp_path):
    """An evaluator made of another plugin's evaluators: with that plugin disabled the config
    check fails in one line naming both plugins; with autoload off the needed plugin is loaded."""
    text = "plugins: {enable: [throwaway_fusion]%s}\nevaluator: {name: fusion, members: [{name: naswot, batch_size: 8}]}\n"
    fine = write_config(tmp_path, text % "")
    proc = nas("config", "check", fine, env=env(site, "", NAS_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert proc.returncode == 0, proc.stderr
    disabled = write_config(tmp_path, text % ", disable: [zero_cost]")
    proc = nas("config", "check", disabled, env=env(site, ""))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: plugin 'throwaway_fusion' needs plugin 'zero_cost', which is disabled in the config (plugins.disable)"
    ]
