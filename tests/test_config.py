from pathlib import Path

import pytest

from nas_core.config import load_config, resolve_config
from nas_core.errors import ConfigError
from nas_core.plugins import PluginHost

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def full(path, overrides=()):
    config = load_config(path, list(overrides))
    return resolve_config(config, PluginHost(autoload=False).registries)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("trian: {}\n", "trian: unknown key"),
        ("train: {optimizer: {lrr: 0.1}}\n", "train.optimizer.lrr: unknown key"),
        ("train: {epochs: many}\n", "train.epochs: Input should be a valid number"),
        ("train: {optimizer: {name: rmsprop}}\n", "train.optimizer.name: Input should be 'sgd' or 'adamw'"),
        ("search: {constraints: {max_flop: 3}}\n", "search.constraints.max_flop: unknown key"),
        ("sampler: {name: fairnas, paths: 3}\n", "sampler.paths: unknown key"),
        ("sampler: {name: fairnas, paths_per_step: zero}\n", "sampler.paths_per_step: Input should be a valid integer"),
        ("sampler: {name: fairnass}\n", "sampler.name: unknown sampler 'fairnass'; did you mean 'fairnas'?"),
        ("regularizers: [{name: nothing}]\n", "regularizers.0.name: unknown regularizer 'nothing'"),
        ("evaluator: {name: accuracy, split: train}\n", "evaluator.split: String should match pattern"),
    ],
)
def test_errors_name_file_and_dotted_path(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        full(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"line \d+: invalid YAML"):
        load_config(write(tmp_path, "train: [\n"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_yaml_is_data_not_code(tmp_path):
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, "seed: !!python/object/apply:os.system ['true']\n"))


def test_overrides_parse_yaml_values_and_reach_component_options(tmp_path):
    config = full(REPO / "tests" / "base.yaml", ["train.optimizer.lr=0.2", "sampler.name=fairnas", "sampler.paths_per_step=3", "train.progress=false"])
    assert config.train.optimizer.lr == 0.2
    assert config.sampler.options.paths_per_step == 3
    assert config.train.progress is False
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_config(None, ["train.optimizer.lr"])


def test_show_contains_defaults_and_component_options():
    config = full(REPO / "tests" / "base.yaml")
    data = config.to_dict()
    assert data["train"]["optimizer"]["momentum"] == 0.9
    assert data["evaluator"]["bn_recal_batches"] == 4
    assert data["space"]["width"] == 0.25 and data["space"]["num_classes"] == 10


def test_the_trained_supernet_config_checks_and_scores_by_supernet_accuracy():
    """configs/supernet.yaml (README: search with a trained supernet) validates, and it scores by
    the layer effects of the trained supernet's accuracy, so `nas run` trains before it searches."""
    from nas_test_helpers import nas

    proc = nas("config", "check", str(REPO / "configs" / "supernet.yaml"))
    assert proc.returncode == 0, proc.stderr
    config = full(REPO / "configs" / "supernet.yaml")
    assert config.evaluator.name == "layer-additive" and config.evaluator.options.member.name == "accuracy"
    assert config.search.constraints.max_flops is not None


def test_the_main_job_is_a_search_under_a_macs_budget_that_checks():
    """configs/quickstart.yaml (the README's first command) builds all its components, plugin
    evaluators inside the fusion included, and searches under a MACs limit the space can meet."""
    from nas_test_helpers import nas

    proc = nas("config", "check", str(REPO / "configs" / "quickstart.yaml"))
    assert proc.returncode == 0, proc.stderr
    config = full(REPO / "configs" / "quickstart.yaml")
    assert config.search.constraints.max_flops is not None
    assert config.evaluator.name == "rank-fusion"
