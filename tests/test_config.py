"""Configs: the assignment's sectioned YAML, --set overrides, precedence, and every bad value rejected clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplab import config as configs
from mlplab.errors import ConfigError, MlplabError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ASSIGNMENT_DEFAULTS = {"batch_size": 64, "learning_rate": 0.1, "reg": 0.001, "epochs": 10, "momentum": 0.0}


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_assignments() -> None:
    config = configs.resolve()
    assert {k: config[k] for k in ASSIGNMENT_DEFAULTS} == ASSIGNMENT_DEFAULTS
    assert (config["type"], config["hidden_sizes"], config["seed"]) == ("TwoLayerNet", [128], 1024)
    assert (config["dataset"], config["data_dir"], config["dtype"]) == ("digits", None, "float32")


@pytest.mark.parametrize(
    ("name", "model"),
    [("two_layer.yaml", "TwoLayerNet"), ("softmax.yaml", "SoftmaxRegression"), ("config_exp.yaml", "TwoLayerNet")],
)
def test_shipped_configs_hold_the_assignment_defaults(name: str, model: str) -> None:
    config = configs.resolve(CONFIGS / name)
    assert config["type"] == model
    assert {k: config[k] for k in ASSIGNMENT_DEFAULTS} == ASSIGNMENT_DEFAULTS
    assert config["seed"] == 1024


def test_digits_config() -> None:
    config = configs.resolve(CONFIGS / "digits.yaml")
    settings = (config["dataset"], config["batch_size"], config["learning_rate"], config["epochs"])
    assert settings == ("digits", 8, 0.2, 30)


SECTIONED = """
Train:
  type: SoftmaxRegression
  batch_size: 32
  learning_rate: 0.05
  reg: 0.0005
  epochs: 4
  momentum: 0.9
  seed: 7
network:
  hidden_size: 64
data:
  dataset: digits
  data_dir: null
"""
FLAT = """
type: SoftmaxRegression
batch_size: 32
lr: 0.05          # aliases are accepted
reg: 0.0005
epochs: 4
momentum: 0.9
seed: 7
hidden: 64
"""


def test_sections_are_merged_and_equal_to_flat_keys(tmp_path: Path) -> None:
    sectioned = configs.resolve(write(tmp_path, SECTIONED, "a.yaml"))
    flat = configs.resolve(write(tmp_path, FLAT, "b.yaml"))
    assert sectioned == flat
    assert sectioned["learning_rate"] == 0.05 and sectioned["hidden_sizes"] == [64] and sectioned["momentum"] == 0.9


def test_a_key_set_twice_differently_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "Train:\n  epochs: 3\nschedule_section:\n  epochs: 5\n")
    with pytest.raises(ConfigError, match="key 'epochs' is set twice with different values"):
        configs.resolve(path)


def test_numbers_are_typed(tmp_path: Path) -> None:
    config = configs.resolve(write(tmp_path, "Train:\n  learning_rate: 1\n  reg: 1e-4\n  epochs: 3\n"))
    assert config["learning_rate"] == 1.0 and isinstance(config["learning_rate"], float)
    assert config["reg"] == 1e-4  # YAML 1.1 reads 1e-4 as text; it is still the number
    assert config["epochs"] == 3 and isinstance(config["epochs"], int)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert configs.resolve(write(tmp_path, "# nothing here\n")) == configs.resolve()


def test_overrides_and_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, SECTIONED)
    config = configs.resolve(
        path,
        ["learning_rate=0.2", "Train.epochs=9", "lr=0.3", "data_dir=/somewhere/mnist", "momentum=0"],
        epochs=2,
        dataset=None,
    )
    assert config["learning_rate"] == 0.3  # the last --set wins, aliases included
    assert config["epochs"] == 2  # explicit keyword (a CLI flag) beats --set, which beats the file
    assert config["momentum"] == 0.0 and isinstance(config["momentum"], float)
    assert config["batch_size"] == 32  # from the file
    assert config["dataset"] == "mnist"  # a data_dir without a dataset means MNIST


@pytest.mark.parametrize(
    ("data_dir", "explicit", "expected"),
    [
        ("/data/mnist", None, "mnist"),
        ("/data/Fashion-MNIST", None, "fashion-mnist"),
        ("/data/fashion-mnist", "mnist", "mnist"),
    ],
)
def test_dataset_inferred_from_the_data_dir(data_dir: str, explicit: str | None, expected: str) -> None:
    assert configs.resolve(data_dir=data_dir, dataset=explicit)["dataset"] == expected


def test_model_type_aliases_resolve_to_class_names() -> None:
    assert configs.resolve(None, ["type=softmax"])["type"] == "SoftmaxRegression"
    assert configs.resolve(None, ["model=two_layer"])["type"] == "TwoLayerNet"


def test_exponent_literals_in_overrides() -> None:
    assert configs.resolve(None, ["learning_rate=1e-3"])["learning_rate"] == 0.001
    assert configs.resolve(None, ["learning_rate=1e6"])["learning_rate"] == 1e6


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'learning_rat'; did you mean 'learning_rate'\?"):
        configs.resolve(write(tmp_path, "Train:\n  learning_rat: 0.1\n"))
    with pytest.raises(ConfigError, match=r"unknown config key 'batchsize'; did you mean 'batch_size'\?"):
        configs.resolve(None, ["batchsize=3"])
    with pytest.raises(ConfigError, match=r"unknown config key 'zzz'$"):
        configs.resolve(None, ["zzz=3"])


BAD_VALUES = {
    "learning_rate=0": "config key 'learning_rate'=0.0: must be > 0",
    "learning_rate=-0.1": "config key 'learning_rate'=-0.1: must be > 0",
    "learning_rate=fast": "config key 'learning_rate': expected float, got 'fast'",
    "learning_rate=nan": "config key 'learning_rate': expected float, got 'nan'",
    "learning_rate=true": "config key 'learning_rate': expected float, got True",
    "batch_size=0": "config key 'batch_size'=0: must be ≥ 1",
    "batch_size=-5": "config key 'batch_size'=-5: must be ≥ 1",
    "batch_size=2.5": "config key 'batch_size': expected int, got 2.5",
    "epochs=0": "config key 'epochs'=0: must be ≥ 1",
    "epochs=ten": "config key 'epochs': expected int, got 'ten'",
    "hidden_sizes=[0]": "config key 'hidden_sizes'=[0]: must be a non-empty list of ints ≥ 1",
    "reg=-1": "config key 'reg'=-1.0: must be ≥ 0",
    "momentum=1": "config key 'momentum'=1.0: must be in [0, 1)",
    "seed=-1": "config key 'seed'=-1: must be ≥ 0",
    "dataset=cifar": "config key 'dataset'='cifar': must be digits, mnist or fashion-mnist",
    "dtype=float16": "config key 'dtype'='float16': must be float32 or float64",
    "epochs=": "config key 'epochs': expected int, got None",
}


@pytest.mark.parametrize("override", BAD_VALUES)
def test_bad_values_are_rejected(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        configs.resolve(None, [override])
    assert str(info.value) == BAD_VALUES[override]


def test_bad_value_in_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'batch_size'=0: must be ≥ 1"):
        configs.resolve(write(tmp_path, "Train:\n  batch_size: 0\n"))


def test_set_without_equals() -> None:
    with pytest.raises(ConfigError, match=r"--set 'epochs': expected key=value"):
        configs.resolve(None, ["epochs"])


def test_unknown_model_type() -> None:
    with pytest.raises(MlplabError, match=r"unknown model type 'ResNet'; choose one of .*SoftmaxRegression"):
        configs.resolve(None, ["type=ResNet"])


BROKEN = {
    "unclosed list": ("Train:\n  epochs: 3\n  steps: [1, 2\n", "broken YAML at line"),
    "bad indentation": ("Train:\n  epochs: 3\n reg: 0.1\n", "broken YAML at line 3"),
    "tab": ("Train:\n\tepochs: 3\n", "broken YAML at line 2"),
    "a list": ("- 1\n- 2\n", "expected a mapping of sections or keys, got list"),
    "a scalar": ("hello\n", "expected a mapping of sections or keys, got str"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_yaml(tmp_path: Path, case: str) -> None:
    text, message = BROKEN[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        configs.resolve(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_or_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        configs.resolve(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        configs.resolve(tmp_path)  # a directory
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"binary\.yaml: cannot read"):
        configs.resolve(binary)


def test_applicable_keeps_only_what_the_model_optimizer_and_schedule_use() -> None:
    mlp = configs.applicable(configs.resolve(CONFIGS / "mnist_best.yaml"))
    assert {"hidden_sizes", "activation", "init", "dropout", "beta1", "beta2", "warmup_epochs"} <= set(mlp)
    assert not {"momentum", "weight_decay", "milestones", "gamma"} & set(mlp)
    softmax = configs.applicable(configs.resolve(None, ["type=softmax", "schedule=step", "optimizer=adamw"]))
    assert {"milestones", "gamma", "weight_decay", "beta1"} <= set(softmax)
    assert not {"hidden_sizes", "activation", "momentum"} & set(softmax)
    assert configs.applicable(softmax) == softmax


@pytest.fixture
def fresh_notes() -> None:
    """Each old name is noted once per process: start every test with none noted yet."""
    configs._noted.clear()


@pytest.mark.parametrize(
    ("override", "new", "value"),
    [("augment=2", "shift", 2), ("steps=[3, 5]", "milestones", [3, 5]), ("hidden_size=64", "hidden_sizes", [64])],
)
def test_an_old_key_name_is_read_as_the_new_one_with_a_one_line_note(
    override: str, new: str, value: object, fresh_notes: None, capsys: pytest.CaptureFixture[str]
) -> None:
    old = override.split("=")[0]
    config = configs.resolve(None, [override])
    assert config[new] == value and old not in config
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--set: config key {old} is now {new}" in err and "still works" in err
    assert configs.resolve(None, [override]) == config  # the same again, and not noted twice
    assert capsys.readouterr().err == ""


def test_old_names_in_a_file_and_as_keywords(tmp_path: Path, fresh_notes: None, capsys) -> None:
    old = write(tmp_path, "Train:\n  type: TwoLayerNet\nnetwork:\n  hidden_size: 32\ndata:\n  augment: 1\n")
    config = configs.resolve(old, ["lr=0.5"])
    assert (config["hidden_sizes"], config["shift"], config["learning_rate"]) == ([32], 1, 0.5)
    assert config == configs.resolve(write(tmp_path, "hidden_sizes: [32]\nshift: 1\n", "new.yaml"), ["lr=0.5"])
    assert configs.resolve(None, augment=2)["shift"] == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": config key ")[1].split(" is now")[0] for line in err] == ["hidden_size", "augment"]


def test_an_old_and_a_new_name_with_different_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key 'shift' is set twice with different values"):
        configs.resolve(write(tmp_path, "augment: 1\nshift: 2\n"))


def test_a_stored_config_is_upgraded_silently(capsys: pytest.CaptureFixture[str]) -> None:
    stored = {"type": "TwoLayerNet", "hidden_size": 64, "augment": 1, "steps": [2, 4], "reg": 0.1}
    assert configs.upgrade(stored) == {
        "type": "TwoLayerNet",
        "reg": 0.1,
        "hidden_sizes": [64],
        "shift": 1,
        "milestones": [2, 4],
    }
    assert configs.upgrade({"hidden_size": 64, "hidden_sizes": [32]}) == {"hidden_sizes": [32]}  # the new one stands
    assert capsys.readouterr().err == ""


def test_the_renamed_keys_are_documented() -> None:
    table = (CONFIGS.parent / "docs" / "guide" / "configs.md").read_text().split("# Renamed keys")[1]
    for old, renamed in configs.RENAMED.items():
        assert f"| `{old}` | `{renamed.new}` |" in table


def test_every_choice_is_the_one_its_module_implements() -> None:
    from mlplab import choices, data, optim, schedules
    from mlplab.layers import ACTIVATIONS, INITS
    from mlplab.models.cnn import CONV_PADDINGS

    assert data.DATASETS == choices.DATASETS and schedules.SCHEDULES == choices.SCHEDULES
    assert tuple(ACTIVATIONS) == choices.ACTIVATIONS and INITS == choices.INITS
    assert CONV_PADDINGS == choices.CONV_PADDINGS and tuple(optim.OPTIMIZERS) == choices.OPTIMIZERS
    for key, names in [("activation", choices.ACTIVATIONS), ("optimizer", choices.OPTIMIZERS)]:
        assert all(configs.OPTIONS[key].check(name) for name in names) and not configs.OPTIONS[key].check("x")


def test_importing_the_config_imports_no_model_code() -> None:
    import subprocess
    import sys

    code = "import sys, mlplab.config; print(sorted(m for m in sys.modules if m.startswith('mlplab.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "mlplab.choices" in loaded and not any(m in loaded for m in ("mlplab.layers", "mlplab.models'", "numba"))
