"""The third-party plugin kit: the guide followed literally, the testing kit, the generated hook
reference, plugin API versions and deprecations, and ``nas plugins --hooks``."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import textwrap
import warnings
from pathlib import Path

import pluggy
import pytest

from nas_core import PLUGIN_API_VERSION, hookspecs
from nas_core.deprecation import NasPluginDeprecationWarning, deprecated_arguments
from nas_core.errors import ConfigError, PluginError
from nas_core.testing import HookRecorder, assert_lifecycle_order, lifecycle_hook_names, merge, synthetic_data, tiny_space
from nas_core.testing.lifecycle import LifecycleAutomaton, lifecycle_automaton

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "writing-a-plugin.md"
BIN = Path(sys.executable).parent
QUIET_ENV = {"OMP_NUM_THREADS": "1", "COLUMNS": "400", "PYTHONWARNINGS": "ignore::UserWarning"}


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **QUIET_ENV, **extra}


# ------------------------------------------------------------------------------------------
# The guide, followed literally
# ------------------------------------------------------------------------------------------


def guide_steps(text: str) -> list[tuple[str, str, str]]:
    """('file', path, content) for every fenced block with ``title=path`` and ('run', command,
    expected output) for every ``$`` line of a ``console`` block, in the guide's order."""
    steps: list[tuple[str, str, str]] = []
    for match in re.finditer(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", text, flags=re.S | re.M):
        lang, info, body = match.group(1), match.group(2), match.group(3)
        title = re.search(r'title="([^"]+)"', info)
        if title:
            steps.append(("file", title.group(1), body))
        elif lang == "console":
            for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, _, expected = chunk.partition("\n")
                steps.append(("run", command.strip(), expected.strip()))
    return steps


def as_subprocess(command: str, tools: Path) -> list[str]:
    """The guide's commands run with the tools of ``tools`` (a venv's bin folder); pip installs
    editable without dependencies or build isolation (no network needed)."""
    words = shlex.split(command)
    tool, args = words[0], words[1:]
    python = str(tools / "python")
    if tool == "pip":
        assert args[:2] == ["install", "-e"], f"unexpected pip command in the guide: {command}"
        return [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", *args[1:]]
    if tool == "nas":
        return [str(tools / "nas"), *args]
    if tool == "pytest":
        return [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    raise AssertionError(f"the guide runs '{tool}', which this test does not know how to run")


@pytest.fixture
def guide_folder(tmp_path) -> tuple[Path, Path]:
    """An empty folder, and the bin folder of a throwaway venv layered over this one: it sees
    every package this venv has (a .pth file adds this venv's site-packages), and the guide's
    ``pip install -e`` goes into it. So nothing in this venv changes, and tests running at the
    same time (``pytest -n``, another session) never see the guide's plugin autoloaded."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    tools = venv / "bin"
    own_site = subprocess.run([str(tools / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    (Path(own_site) / "layered-on-the-test-venv.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    console_script = (BIN / "nas").read_text().split("\n", 1)[1]  # this venv's `nas`, run by the new python
    (tools / "nas").write_text(f"#!{tools / 'python'}\n{console_script}")
    (tools / "nas").chmod(0o755)
    folder = tmp_path / "guide"
    folder.mkdir()
    return folder, tools


def test_following_only_the_guide_gives_an_installed_tested_enabled_plugin(guide_folder):
    folder, tools = guide_folder
    steps = guide_steps(GUIDE.read_text())
    assert [s[1].split()[0] for s in steps if s[0] == "run"] == ["pip", "nas", "pytest", "nas", "nas"]
    outputs: dict[str, subprocess.CompletedProcess] = {}
    for kind, what, content in steps:
        if kind == "file":
            path = folder / what
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            continue
        proc = subprocess.run(as_subprocess(what, tools), cwd=folder, capture_output=True, text=True, env=_env(), timeout=900)
        outputs[what] = proc
        printed = proc.stdout + proc.stderr
        if content.startswith("error:"):  # the guide shows this command failing
            assert proc.returncode == 2, f"{what}: expected a config error, got {proc.returncode}\n{printed}"
            assert proc.stderr.strip() == content, f"{what}:\n{proc.stderr}"
            continue
        assert proc.returncode == 0, f"guide step '{what}' failed ({proc.returncode}):\n{printed[-3000:]}"
        for line in filter(None, content.splitlines()):
            assert line.strip() in printed, f"{what}: the guide promises '{line}', the output was:\n{printed}"

    # installed and listed with its version, what it registers and which hooks it implements
    listing = next(p.stdout for c, p in outputs.items() if c.startswith("nas plugins"))
    row = next(line for line in listing.splitlines() if " hello " in line)
    for fact in ("0.1.0", "nas-hello", "samplers: round-robin", "nas_after_train_step", "nas_register_samplers"):
        assert fact in row, f"'{fact}' missing from the plugins row: {row}"
    # the author's own tests passed through the kit
    assert "2 passed" in outputs["pytest nas-hello/tests"].stdout
    # the short run used the plugin: recorded in metadata, config and every logged step
    run_dir = folder / "runs" / "hello"
    assert {p.name for p in run_dir.glob("metadata-*.json")} == {f"metadata-{c}.json" for c in ("run", "train", "search", "export")}
    metadata = json.loads((run_dir / "metadata-train.json").read_text())
    hello = [p for p in metadata["plugins"] if p["name"] == "hello"]
    assert hello and hello[0]["loaded"] and hello[0]["version"] == "0.1.0" and hello[0]["distribution"] == "nas-hello"
    assert metadata["config"]["sampler"] == {"name": "round-robin", "paths_per_step": 3}
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [4, 8, 12]
    assert all(0 <= line["hello/identities"] <= 8 for line in lines)
    assert "hello/identities" in outputs["nas run hello.yaml"].stdout
    assert json.loads((run_dir / "search.json").read_text())["best"]["arch"]
    # installed into the throwaway venv only: this venv (and every test beside this one) never saw it
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("nas-hello")


# ------------------------------------------------------------------------------------------
# The testing kit
# ------------------------------------------------------------------------------------------


def test_recorder_and_documented_order_cover_every_lifecycle_hook():
    lifecycle = set(lifecycle_hook_names())
    assert lifecycle and not any(name.startswith("nas_register_") for name in lifecycle)
    assert set(lifecycle_automaton().hooks) == lifecycle, "hookspecs' lifecycle block must name every broadcast hook"
    recorder = HookRecorder()
    pm = pluggy.PluginManager("nas_core")
    pm.add_hookspecs(hookspecs)
    pm.register(recorder)
    pm.check_pending()
    assert {hc.name for hc in pm.get_hookcallers(recorder)} == lifecycle


def test_a_real_train_resume_and_search_follow_the_documented_order(nas_kit):
    config = {"train": {"max_steps": 6, "checkpoint_every_steps": 3}, "sampler": {"name": "fairnas"}}
    first = nas_kit.train(config)
    names = first.recorder.names()
    assert_lifecycle_order(first.recorder)
    assert names.count("nas_before_train_step") == 6 and names.count("nas_extra_loss") == 6 * 3  # FairNAS: 3 paths
    assert names.count("nas_checkpoint_save") == 3  # steps 3, 6 and the final one
    resumed_config = nas_kit.config(merge(config, {"run_dir": str(first.run_dir), "train": {"max_steps": 8}}))
    run, recorder = nas_kit.open(resumed_config)
    from nas_core.trainer import Trainer

    Trainer(run).fit(resume=True)
    assert recorder.names()[:4] == ["nas_configure", "nas_space_built", "nas_checkpoint_load", "nas_train_start"]
    assert recorder.count("nas_before_train_step") == 2
    assert_lifecycle_order(recorder)
    searched = nas_kit.search({"run_dir": str(first.run_dir), "train": {"max_steps": 8}})
    assert searched.recorder.names() == ["nas_configure", "nas_space_built", "nas_checkpoint_load", "nas_search_start", "nas_search_end"]
    assert searched.recorder.of("nas_search_end")[0]["result"] is searched.search
    # meta-test: between them, these runs (and one whole epoch) fire every lifecycle hook of the engine
    epoch = nas_kit.train({"train": {"epochs": 1, "max_steps": None}})
    assert epoch.recorder.count("nas_epoch_end") == 1
    fired = set(names) | set(recorder.names()) | set(searched.recorder.names()) | set(epoch.recorder.names())
    assert fired == set(lifecycle_hook_names()), set(lifecycle_hook_names()) - fired


def test_every_registration_hook_is_fired_with_its_registry():
    """Registration hooks fire at plugin load; the built-in plugin implements those it uses and
    a throwaway in-process plugin records being handed every registry."""
    from nas_core.plugins import REGISTRATION_HOOKS, PluginHost
    from nas_core.registry import Registry

    seen = {}

    class Everything:
        pass

    for hook in REGISTRATION_HOOKS:
        setattr(Everything, hook, staticmethod(pluggy.HookimplMarker("nas_core")(
            (lambda name: lambda registry: seen.__setitem__(name, registry))(hook))))
    from nas_core.registry import Registries

    pm = pluggy.PluginManager("nas_core")
    pm.add_hookspecs(hookspecs)
    pm.register(Everything(), name="everything")
    pm.check_pending()
    registries = Registries()
    for hook, attr in REGISTRATION_HOOKS.items():
        getattr(pm.hook, hook)(registry=getattr(registries, attr))
    assert set(seen) == set(REGISTRATION_HOOKS)
    assert all(isinstance(r, Registry) for r in seen.values())
    registration_specs = {n for n in vars(hookspecs) if n.startswith("nas_register_")}
    assert registration_specs == set(REGISTRATION_HOOKS)
    assert PluginHost(autoload=False).plugins["builtin"].registered  # the engine's own use of them


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        (["nas_space_built"], "hook call #0 'nas_space_built' breaks the documented lifecycle order after (start); allowed here: nas_configure"),
        (["nas_configure", "nas_space_built", "nas_train_start", "nas_before_train_step"], "hook call #3 'nas_before_train_step'"),
        (["nas_configure", "nas_space_built", "nas_search_start"], "allowed here: nas_checkpoint_load, nas_train_start, (end)"),
        (["nas_configure", "nas_space_built", "nas_train_start"], "hook calls end early"),
    ],
)
def test_order_violations_name_the_first_bad_call_and_what_was_allowed(calls, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        assert_lifecycle_order(calls)


def test_grammar_operators():
    automaton = LifecycleAutomaton("nas_a -> ( nas_b | nas_c )+ -> [ nas_d ] -> nas_e*")
    for ok in (["nas_a", "nas_b"], ["nas_a", "nas_c", "nas_b", "nas_d", "nas_e", "nas_e"]):
        automaton.check(ok)
    for bad in (["nas_a"], ["nas_a", "nas_d"], ["nas_a", "nas_b", "nas_d", "nas_d"]):
        with pytest.raises(AssertionError):
            automaton.check(bad)


def test_stand_ins_are_tiny_and_learnable(nas_kit, tiny_supernet):
    import torch

    space = tiny_space()
    assert space.size == 27 and space.input_size == (8, 8) and len(space.layers) == 3
    data = synthetic_data()
    assert data.train.images.shape == (256, 3, 8, 8) and data.train.images.dtype == torch.uint8
    assert torch.equal(data.train.images, synthetic_data().train.images)  # seeded
    assert tiny_supernet(torch.zeros(2, 3, 8, 8), (1, 2, 0)).shape == (2, 4)
    result = nas_kit.train({"train": {"max_steps": 48, "log_every_steps": 16, "optimizer": {"lr": 0.1}}})
    accuracies = [line["train_acc"] for line in result.metrics]
    # Margin: the final accuracy was 90.2-97.7% over seeds 0-4 (92.6% at seed 0, the test's) and
    # identical with ATEN_CPU_CAPABILITY=avx512, avx2 and default; 70 is 20 points, ~7 standard
    # deviations of that spread, below the lowest (chance is 25%).
    print(f"[margin] tiny supernet final training accuracy: observed {accuracies[-1]:.4g}, bound 70")
    assert accuracies[-1] > 70 > 25, f"the tiny supernet did not learn the synthetic classes: {accuracies}"


def test_kit_config_merging_and_errors(nas_kit):
    config = nas_kit.config({"train": {"max_steps": 2}, "evaluator": {"name": "accuracy", "batch_size": 8}})
    assert config.train.max_steps == 2 and config.train.batch_size == 16  # merged, not replaced
    assert merge({"s": {"name": "a", "x": 1}}, {"s": {"name": "b"}}) == {"s": {"name": "b"}}
    with pytest.raises(ConfigError, match=r"^<kit config>: train\.max_step: unknown key$"):
        nas_kit.config({"train": {"max_step": 2}})


def test_in_process_plugins_get_the_same_api_check(nas_kit, tmp_path):
    module = _module(tmp_path, "future_plugin", 'NAS_PLUGIN_API = "2"\n')
    with pytest.raises(PluginError) as excinfo:
        nas_kit.open(plugins=[module])
    message = str(excinfo.value)
    assert message == f"plugin 'future_plugin' needs plugin API 2, but nas-core {_version()} provides plugin API {PLUGIN_API_VERSION}"


# ------------------------------------------------------------------------------------------
# Plugin API versions and deprecations
# ------------------------------------------------------------------------------------------


def _version() -> str:
    from nas_core import __version__

    return __version__


def _module(folder: Path, name: str, source: str):
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _site(folder: Path, plugins: dict[str, str]) -> Path:
    """A folder usable as PYTHONPATH holding one-module distributions with entry points."""
    site = folder / "site"
    site.mkdir(exist_ok=True)
    for name, source in plugins.items():
        module = f"{name}_{folder.name}".replace("-", "_")  # unique: several tests import these in-process
        (site / f"{module}.py").write_text(source)
        info = site / f"{name.replace('_', '-')}-0.2.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.2.0\n")
        (info / "entry_points.txt").write_text(f"[nas_core.plugins]\n{name} = {module}\n")
    return site


@pytest.mark.parametrize(
    ("declared", "accepted"),
    [("1", True), ("1.0", True), ("1.1", True), ("1.2", True), ("2", False), ("1.3", False), ("0.9", False), ("banana", False)],
)
def test_plugin_api_version_is_checked(tmp_path, monkeypatch, declared, accepted):
    from nas_core.plugins import PluginHost

    monkeypatch.syspath_prepend(str(_site(tmp_path, {"versioned": f'NAS_PLUGIN_API = "{declared}"\n'})))
    if accepted:
        assert PluginHost(enable=["versioned"], autoload=False).plugins["versioned"].loaded
        return
    with pytest.raises(PluginError) as excinfo:
        PluginHost(enable=["versioned"], autoload=False)
    if declared == "banana":
        expected = "plugin 'versioned' declares NAS_PLUGIN_API = 'banana', which is not a version like \"1\" or \"1.0\""
    else:
        expected = f"plugin 'versioned' needs plugin API {declared}, but nas-core {_version()} provides plugin API {PLUGIN_API_VERSION}"
    assert str(excinfo.value) == expected
    # autoloaded but not needed: skipped and reported, the other plugins still work
    host = PluginHost(autoload=True)
    assert host.plugins["versioned"].error == expected and not host.plugins["versioned"].loaded
    assert host.plugins["builtin"].loaded


def test_incompatible_plugin_stops_the_run_with_one_line(tmp_path):
    site = _site(tmp_path, {"versioned": 'NAS_PLUGIN_API = "2"\n'})
    config = tmp_path / "run.yaml"
    config.write_text("plugins: {enable: [versioned]}\n")
    proc = subprocess.run([str(BIN / "nas"), "run", str(config)], capture_output=True, text=True, env=_env(PYTHONPATH=str(site), NAS_PLUGINS=""))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: plugin 'versioned' needs plugin API 2, but nas-core {_version()} provides plugin API {PLUGIN_API_VERSION}\n"


DEPRECATING_SPECS = '''"""Specs of a future API: ``nas_demo`` is moving from ``old`` to ``new``."""
import pluggy
from nas_core.deprecation import deprecated_arguments

PROJECT_NAME = "nas_core"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# ----------------------------------------------------------------------------------------------
# Demo: a phase. Broadcast.
# ----------------------------------------------------------------------------------------------


@hookspec(warn_on_impl_args=deprecated_arguments("nas_demo", since="1.1", old="use `new` (the same value, typed)"))
def nas_demo(old: int, new: int) -> None:
    """Called once; ``old`` is deprecated."""
'''

OLD_STYLE = """from nas_core import hookimpl

@hookimpl
def nas_demo(old):
    pass
"""

NEW_STYLE = """from nas_core import hookimpl

@hookimpl
def nas_demo(new):
    pass
"""


def test_deprecated_hook_arguments_warn_at_the_plugins_own_line(tmp_path):
    specs = _module(tmp_path, "demo_specs", DEPRECATING_SPECS)
    pm = pluggy.PluginManager("nas_core")
    pm.add_hookspecs(specs)
    old = _module(tmp_path, "old_style_plugin", OLD_STYLE)
    with pytest.warns(NasPluginDeprecationWarning) as record:
        pm.register(old, name="old_style")
    warning = record[0]
    assert str(warning.message) == (
        "nas_demo: argument 'old' is deprecated since plugin API 1.1 and goes away in plugin API 2; use `new` (the same value, typed)"
    )
    assert warning.filename == str(tmp_path / "old_style_plugin.py") and warning.lineno in (3, 4)
    new = _module(tmp_path, "new_style_plugin", NEW_STYLE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pm.register(new, name="new_style")
    assert pm.hook.nas_demo(old=1, new=1) == []  # both still called during the deprecation period
    # the generated reference lists deprecated arguments
    render = _gen_hook_docs().render
    text = render(specs)
    assert "### nas_demo" in text and "**Deprecated arguments:**" in text
    assert "- `old`: nas_demo: argument 'old' is deprecated since plugin API 1.1" in text
    assert deprecated_arguments("nas_x", since="3.2", a="b")["a"].args[0].endswith("goes away in plugin API 4; b")


def test_lifecycle_hooks_deprecate_run_in_favour_of_context():
    """Plugin API 1.1: every lifecycle hook that took ``run`` also takes ``context``; ``run``
    is deprecated (and the only deprecated argument). docs/hooks.md lists it."""
    deprecated = {}
    for name in lifecycle_hook_names():
        options = getattr(getattr(hookspecs, name), "nas_core_spec")
        deprecated[name] = sorted(options.get("warn_on_impl_args") or {})
        params = inspect.signature(getattr(hookspecs, name)).parameters
        assert ("run" in params) == ("context" in params) == (deprecated[name] == ["run"]), name
    assert sum(1 for v in deprecated.values() if v) == 9
    assert PLUGIN_API_VERSION == "1.2"


LEGACY_PLUGIN = '''
from nas_core import hookimpl

NAS_PLUGIN_API = "1"
SEEN = []


class EveryOther:
    """A sampler written for plugin API 1.0: factory(run, **options), reads run.space."""

    def __init__(self, run, period=2):
        self.space, self.period, self.last = run.space, period, None

    def sample(self, step):
        if self.last is None or step % self.period == 0:
            self.last = [tuple(step % n for n in self.space.num_choices)]
        return self.last

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass

    def trainable_modules(self):
        return []


@hookimpl
def nas_register_samplers(registry):
    registry.register("every-other", EveryOther)


@hookimpl
def nas_train_start(run):
    SEEN.append(("train_start", run.space.name))


@hookimpl
def nas_after_train_step(ctx):
    SEEN.append(("step", ctx.run.space.name))
'''


def test_a_plugin_written_for_api_1_0_still_runs_with_deprecation_warnings(nas_kit, tmp_path):
    with pytest.warns(NasPluginDeprecationWarning, match="nas_train_start: argument 'run' is deprecated since plugin API 1.1"):
        legacy = _module(tmp_path, "legacy_plugin", LEGACY_PLUGIN)
        run, recorder = nas_kit.open({"sampler": {"name": "every-other"}, "train": {"max_steps": 2}}, plugins=[legacy])
    from nas_core import commands

    with pytest.warns(NasPluginDeprecationWarning) as record:
        commands.train(run)
    messages = {str(w.message) for w in record}
    assert any("component 'every-other' is built the plugin API 1.0 way" in m for m in messages), messages
    assert any(m.startswith("StepContext.run is deprecated since plugin API 1.1") for m in messages), messages
    assert legacy.SEEN == [("train_start", "tiny"), ("step", "tiny"), ("step", "tiny")]
    assert [c["ctx"].paths for c in recorder.of("nas_before_train_step")] == [[(0, 0, 0)], [(0, 0, 0)]]
    assert_lifecycle_order(recorder)


# ------------------------------------------------------------------------------------------
# Generated hook reference
# ------------------------------------------------------------------------------------------


def _gen_hook_docs():
    spec = importlib.util.spec_from_file_location("gen_hook_docs", REPO / "scripts" / "gen_hook_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_reference_is_up_to_date():
    generated = _gen_hook_docs().render()
    committed = (REPO / "docs" / "hooks.md").read_text()
    assert committed == generated, "docs/hooks.md is out of date: run python scripts/gen_hook_docs.py"


def test_hook_reference_documents_every_hook_with_its_signature():
    text = (REPO / "docs" / "hooks.md").read_text()
    names = [n for n in vars(hookspecs) if n.startswith("nas_") and hasattr(getattr(hookspecs, n), "nas_core_spec")]
    assert len(names) >= 20
    for name in names:
        assert f"### {name}\n" in text and f"def {name}(" in text, name
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
    assert "nas_configure\n-> [ nas_space_built" in text  # the lifecycle order, rendered


def test_check_mode_fails_on_a_stale_page(tmp_path):
    stale = tmp_path / "hooks.md"
    stale.write_text("# Hook reference\n")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_hook_docs.py"), "--check", "--output", str(stale)], capture_output=True, text=True)
    assert proc.returncode == 1 and "out of date" in proc.stderr


# ------------------------------------------------------------------------------------------
# nas plugins --hooks
# ------------------------------------------------------------------------------------------


def test_plugins_hooks_shows_which_plugin_implements_which_hook(tmp_path):
    site = _site(
        tmp_path,
        {
            "watcher": textwrap.dedent(
                """
                from nas_core import hookimpl
                NAS_PLUGIN_API = "1"

                @hookimpl
                def nas_train_start(context):
                    pass

                @hookimpl
                def nas_search_end(context, result):
                    pass
                """
            ),
            "too_new": 'NAS_PLUGIN_API = "9"\n',
        },
    )
    env = _env(PYTHONPATH=str(site), NAS_PLUGINS="watcher,too_new")
    proc = subprocess.run([str(BIN / "nas"), "plugins", "--hooks"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") >= 5}
    assert "nas_search_end, nas_train_start" in rows["watcher"] and "watcher" in rows["watcher"]
    assert "nas_register_samplers" in rows["builtin"] and "nas_train_start" not in rows["builtin"]
    assert "failed: plugin 'too_new' needs plugin API 9" in rows["too_new"]
    without = subprocess.run([str(BIN / "nas"), "plugins"], capture_output=True, text=True, env=env)
    assert "nas_train_start" not in without.stdout
