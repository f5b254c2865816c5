"""Tests for mnist_core.config: defaults, JSON round trips, and errors that name the field."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_core.config import (
    ACTIVATIONS,
    CNN_STYLES,
    CROPS,
    DATASETS,
    DEVICES,
    MAX_DEPTH,
    MAX_TRAIN_SIZE,
    MODELS,
    OPTIMIZERS,
    SCHEDULES,
    RunConfig,
    lenet5,
    quick_default,
)
from mnist_core.errors import ConfigError, MnistLabError

FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))
FLOAT_FIELDS = ("dropout", "lr", "weight_decay", "momentum", "val_fraction")


def assert_names_field(err: pytest.ExceptionInfo[ConfigError], field: str) -> None:
    assert err.value.field == field
    assert field in str(err.value)


# ---------------------------------------------------------------- defaults


def test_defaults_are_the_blog_base_row() -> None:
    cfg = RunConfig()
    assert cfg.model == "mlp"
    assert cfg.hidden == (512,)
    assert cfg.depth == 1
    assert cfg.input_size == 784
    assert cfg.batch_size == 64
    assert cfg.epochs == 2
    assert cfg.optimizer == "adam"
    assert cfg.lr == 1e-3
    assert cfg.val_fraction == 0.1
    assert cfg.dropout == 0.0 and cfg.batch_norm is False and cfg.augment is False
    assert cfg.crop == 28 and cfg.dataset == "mnist" and cfg.schedule == "none"


def test_config_error_is_a_value_error_and_a_lab_error() -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(epochs=0)
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, MnistLabError)


# ---------------------------------------------------------------- round trips

ROUND_TRIP_CONFIGS = [
    RunConfig(),
    lenet5(),
    quick_default(),
    lenet5(crop=20, batch_size=32, optimizer="sgd", momentum=0.5),
    RunConfig(hidden=(512, 256, 120, 84), activation="gelu", dropout=0.25, batch_norm=True),
    RunConfig(model="cnn", hidden=(), cnn_channels=(8, 16, 32, 64), crop=20, schedule="cosine"),
    RunConfig(dataset="fashion", val_fraction=0.0, seed=2**63 - 1, device="cpu", weight_decay=0.5),
    RunConfig(optimizer="adamw", lr=10.0, val_fraction=0.5, epochs=1000, augment=True),
]


@pytest.mark.parametrize("cfg", ROUND_TRIP_CONFIGS, ids=lambda c: c.label())
def test_to_dict_from_dict_round_trip(cfg: RunConfig) -> None:
    data = cfg.to_dict()
    assert set(data) == set(FIELDS)
    assert isinstance(data["hidden"], list) and isinstance(data["cnn_channels"], list)
    assert RunConfig.from_dict(data) == cfg
    # ... also through real JSON text, as a run's config.json is stored.
    again = RunConfig.from_dict(json.loads(json.dumps(data)))
    assert again == cfg
    assert hash(again) == hash(cfg)


def test_lists_and_tuples_give_equal_hashable_configs() -> None:
    from_lists = RunConfig(model="cnn", hidden=[120, 84], cnn_channels=[6, 16])  # type: ignore[arg-type]
    from_tuples = RunConfig(model="cnn", hidden=(120, 84), cnn_channels=(6, 16))
    assert from_lists == from_tuples
    assert isinstance(from_lists.hidden, tuple) and isinstance(from_lists.cnn_channels, tuple)
    assert hash(from_lists) == hash(from_tuples)
    assert RunConfig.from_dict({"hidden": (256, 128)}) == RunConfig.from_dict({"hidden": [256, 128]})


def test_from_dict_fills_missing_keys_with_defaults() -> None:
    assert RunConfig.from_dict({}) == RunConfig()
    assert RunConfig.from_dict({"epochs": 5}) == RunConfig(epochs=5)


def test_from_dict_accepts_an_integer_for_a_float_field() -> None:
    cfg = RunConfig.from_dict({"lr": 1})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)


# ---------------------------------------------------------------- from_dict rejects


def test_from_dict_rejects_unknown_keys_by_name() -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"epochs": 3, "learning_rate": 0.1})
    assert_names_field(err, "learning_rate")


@pytest.mark.parametrize("data", [[1, 2], "mlp", None, 3, 1.5, True], ids=repr)
def test_from_dict_rejects_json_that_is_not_an_object(data: Any) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data)
    assert err.value.field == "config"
    assert type(data).__name__ in str(err.value)


WRONG_TYPES = [
    ("batch_size", "64"),
    ("batch_size", True),
    ("batch_size", 64.0),
    ("epochs", True),
    ("epochs", 2.0),
    ("seed", 1.5),
    ("seed", None),
    ("hidden", ["512"]),
    ("hidden", ["a", "b"]),
    ("hidden", "512"),
    ("hidden", 512),
    ("hidden", [512.0]),
    ("hidden", [True]),
    ("hidden", [[512]]),
    ("cnn_channels", 32),
    ("lr", "0.001"),
    ("lr", True),
    ("lr", None),
    ("dropout", [0.1]),
    ("batch_norm", 1),
    ("batch_norm", "true"),
    ("augment", 0),
    ("amp", 1),
    ("amp", "false"),
    ("model", 1),
    ("activation", None),
    ("crop", 28.0),
    ("crop", "28"),
]


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES, ids=lambda v: repr(v))
def test_from_dict_rejects_wrong_types_by_name(field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({field: value})
    assert_names_field(err, field)


# ---------------------------------------------------------------- invalid values

INVALID_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("hidden", {"hidden": ()}),  # depth 0
    ("hidden", {"hidden": (0,)}),  # width 0
    ("hidden", {"hidden": (512, -3)}),
    ("hidden", {"hidden": (10**9,)}),
    ("hidden", {"hidden": (10**7,)}),
    ("hidden", {"hidden": (8,) * (MAX_DEPTH + 1)}),
    ("cnn_channels", {"model": "cnn", "cnn_channels": ()}),
    ("cnn_channels", {"model": "cnn", "cnn_channels": (0, 16)}),
    ("cnn_channels", {"model": "cnn", "cnn_channels": (10**6,)}),
    ("cnn_channels", {"model": "cnn", "cnn_channels": (4, 4, 4, 4, 4)}),
    ("batch_size", {"batch_size": 0}),
    ("batch_size", {"batch_size": -64}),
    ("batch_size", {"batch_size": int(MAX_TRAIN_SIZE * 0.9) + 1}),  # > 54,000 images left to train on
    ("batch_size", {"batch_size": 30_001, "val_fraction": 0.5}),
    ("batch_size", {"batch_size": MAX_TRAIN_SIZE + 1, "val_fraction": 0.0}),
    ("lr", {"lr": 0.0}),
    ("lr", {"lr": -1e-3}),
    ("lr", {"lr": math.nan}),
    ("lr", {"lr": math.inf}),
    ("lr", {"lr": -math.inf}),
    ("lr", {"lr": 11.0}),
    ("epochs", {"epochs": 0}),
    ("epochs", {"epochs": -1}),
    ("epochs", {"epochs": 1001}),
    ("dropout", {"dropout": 1.0}),
    ("dropout", {"dropout": -0.1}),
    ("dropout", {"dropout": math.nan}),
    ("val_fraction", {"val_fraction": 0.51}),
    ("val_fraction", {"val_fraction": -0.1}),
    ("weight_decay", {"weight_decay": -1e-4}),
    ("momentum", {"momentum": 1.0}),
    ("seed", {"seed": -1}),
    ("seed", {"seed": 2**63}),
    ("model", {"model": "rnn"}),
    ("activation", {"activation": "swish"}),
    ("cnn_style", {"cnn_style": "vgg"}),
    ("dataset", {"dataset": "cifar10"}),
    ("optimizer", {"optimizer": "rmsprop"}),
    ("schedule", {"schedule": "step"}),
    ("device", {"device": "tpu"}),
    ("crop", {"crop": 24}),
    ("model", {"model": "MLP"}),  # choices are case-sensitive
]


@pytest.mark.parametrize(("field", "kwargs"), INVALID_VALUES, ids=lambda v: repr(v))
def test_invalid_values_are_rejected_by_name(field: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(**kwargs)
    assert_names_field(err, field)
    # The JSON path reports the same field.
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data)
    assert_names_field(err, field)


CHOICES = {
    "model": MODELS,
    "activation": ACTIVATIONS,
    "cnn_style": CNN_STYLES,
    "dataset": DATASETS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "device": DEVICES,
    "crop": CROPS,
}


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_every_listed_choice_is_accepted(field: str) -> None:
    for value in CHOICES[field]:
        cfg = RunConfig(**{field: value})
        assert getattr(cfg, field) == value


def test_largest_batch_that_fits_the_training_split_is_accepted() -> None:
    assert RunConfig(batch_size=54_000).batch_size == 54_000
    assert RunConfig(batch_size=60_000, val_fraction=0.0).batch_size == 60_000
    assert RunConfig(batch_size=30_000, val_fraction=0.5).batch_size == 30_000


def test_cnn_may_have_no_dense_hidden_layers() -> None:
    cfg = RunConfig(model="cnn", hidden=())
    assert cfg.depth == 0
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_boundary_values_are_accepted() -> None:
    cfg = RunConfig(hidden=(1, 8192), dropout=0.999, lr=10.0, epochs=1, val_fraction=0.5, momentum=0.0)
    assert cfg.hidden == (1, 8192)


# ---------------------------------------------------------------- regressions (bugs found and fixed)


@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_huge_integer_for_a_float_field_is_a_config_error(field: str) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({field: 10**400})
    assert_names_field(err, field)


@pytest.mark.parametrize("channels", [[[1]], ["a"], [0], [-5]], ids=repr)
def test_mlp_config_still_rejects_garbage_cnn_channels(channels: list[Any]) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"model": "mlp", "cnn_channels": channels})
    assert_names_field(err, "cnn_channels")


def test_batch_equal_to_the_training_split_is_accepted_for_any_fraction() -> None:
    assert RunConfig(batch_size=55_800, val_fraction=0.07).batch_size == 55_800


def test_float_crop_is_rejected_by_the_constructor() -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(crop=28.0)  # type: ignore[arg-type]
    assert_names_field(err, "crop")


# ---------------------------------------------------------------- label, replace, frozen


@pytest.mark.parametrize(
    ("cfg", "label"),
    [
        (RunConfig(), "MLP 784-512-10 bs64"),
        (RunConfig(hidden=(1024, 1024), crop=20, batch_size=128), "MLP 400-1024-1024-10 bs128"),
        (lenet5(), "LeNet-5 6-16 bs64"),
        (quick_default(), "CNN 8-32 bs128"),
    ],
)
def test_label(cfg: RunConfig, label: str) -> None:
    assert cfg.label() == label


def test_lenet5_and_quick_default_presets() -> None:
    lenet = lenet5()
    assert (lenet.model, lenet.cnn_style) == ("cnn", "lenet")
    assert (lenet.cnn_channels, lenet.hidden) == ((6, 16), (120, 84))
    assert lenet5(batch_size=8).batch_size == 8
    with pytest.raises(ConfigError):
        lenet5(epochs=0)
    quick = quick_default()
    assert quick.model == "cnn" and quick.epochs == 1 and quick.augment is False
    # The cheaper first stage and its learning rate, chosen together (scripts/augmentation_study.py).
    assert (quick.cnn_style, quick.cnn_channels, quick.hidden) == ("modern", (8, 32), (128,))
    assert (quick.batch_size, quick.lr, quick.schedule) == (128, 5e-3, "onecycle")


def test_replace_returns_a_changed_copy() -> None:
    cfg = RunConfig()
    other = cfg.replace(hidden=[256, 256], batch_size=32)
    assert other.hidden == (256, 256) and other.batch_size == 32
    assert cfg == RunConfig()  # the original is untouched


@pytest.mark.parametrize(
    ("field", "changes"),
    [("epochs", {"epochs": 0}), ("hidden", {"hidden": ()}), ("optimizer", {"optimizer": "lion"})],
)
def test_replace_validates(field: str, changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig().replace(**changes)
    assert_names_field(err, field)


def test_replace_rejects_unknown_field() -> None:
    with pytest.raises(TypeError):
        RunConfig().replace(width=3)


def test_config_is_frozen_and_hashable() -> None:
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 5  # type: ignore[misc]
    assert {cfg: "base"}[RunConfig()] == "base"
    assert len({RunConfig(), RunConfig(), lenet5(), quick_default()}) == 3


# ---------------------------------------------------------------- properties

# Values as JSON would give them, integers beyond the float range included.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from([v for c in CHOICES.values() for v in c]),
    st.integers(min_value=-2, max_value=600),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_plausible = {
    **{name: st.sampled_from(choices) for name, choices in CHOICES.items()},
    "hidden": st.lists(st.integers(min_value=-1, max_value=9000), max_size=4),
    "cnn_channels": st.lists(st.integers(min_value=-1, max_value=600), max_size=5),
    "batch_size": st.integers(min_value=-1, max_value=60_001),
    "epochs": st.integers(min_value=-1, max_value=1001),
    "seed": st.integers(min_value=-1, max_value=2**64),
    "dropout": st.floats(min_value=-0.1, max_value=1.0),
    "lr": st.floats(min_value=-1.0, max_value=11.0),
    "val_fraction": st.floats(min_value=-0.1, max_value=0.6),
    "weight_decay": st.floats(min_value=-0.1, max_value=1.1),
    "momentum": st.floats(min_value=-0.1, max_value=1.0),
    "batch_norm": st.booleans(),
    "augment": st.booleans(),
    "amp": st.booleans(),
}


@st.composite
def json_configs(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(FIELDS) | st.text(max_size=12), max_size=8, unique=True))
    out: dict[str, Any] = {}
    for key in keys:
        strategy = _plausible.get(key)
        out[key] = draw(strategy | _json_values if strategy is not None else _json_values)
    return out


@settings(max_examples=200, deadline=None, database=None)
@given(json_configs())
def test_from_dict_returns_a_round_tripping_config_or_raises_config_error(data: dict[str, Any]) -> None:
    try:
        cfg = RunConfig.from_dict(data)
    except ConfigError as err:
        assert isinstance(err.field, str)  # may be "" for an unknown key "" (JSON allows it)
        assert err.field in str(err)
        assert err.field in FIELDS or err.field in data  # a real field, or the unknown key itself
        return
    hash(cfg)
    dumped = cfg.to_dict()
    assert RunConfig.from_dict(dumped) == cfg
    assert RunConfig.from_dict(json.loads(json.dumps(dumped, allow_nan=False))) == cfg


@settings(max_examples=200, deadline=None, database=None)
@given(st.fixed_dictionaries({}, optional=_plausible))
def test_every_accepted_plausible_config_is_valid_and_hashable(data: dict[str, Any]) -> None:
    try:
        cfg = RunConfig.from_dict(data)
    except ConfigError as err:
        assert err.field in data
        return
    hash(cfg)
    assert cfg.replace() == cfg
    assert 1 <= cfg.batch_size <= MAX_TRAIN_SIZE
    assert all(isinstance(w, int) and w >= 1 for w in cfg.hidden)
    assert cfg.depth >= (0 if cfg.model == "cnn" else 1)
    assert 0 < cfg.lr <= 10 and 0 <= cfg.dropout < 1 and 0 <= cfg.val_fraction <= 0.5
