"""Property tests of the configuration parser: any JSON-like value gives a RunConfig or a ConfigError.

``RunConfig.from_dict`` reads config.json files of runs planted on disk or
imported from a zip, so it must never raise anything else (a TypeError, an
OverflowError, a RecursionError...), whatever the value. A configuration it
accepts must survive a JSON round trip unchanged, be hashable, have a label,
and build (on the meta device, so a huge one costs nothing) or be refused by
``build_model`` with a ConfigError too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError
from mnist_core.models import build_model

FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
CHOICES = [v for values in RunConfig._choices.values() for v in values]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # beyond the float range
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(CHOICES),
    st.integers(min_value=-2, max_value=70_000),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
# Keys mostly real field names, so that value checks (not only the unknown-key check) are reached.
config_dicts = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=10)
valid_like = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["mlp", "cnn"]),
        "hidden": st.lists(st.integers(min_value=-1, max_value=9000) | json_values, max_size=20),
        "cnn_channels": st.lists(st.integers(min_value=0, max_value=600), max_size=6),
        "cnn_style": st.sampled_from(["lenet", "modern"]),
        "crop": st.sampled_from([28, 20, 28.0, 0, "28"]),
        "batch_size": st.integers(min_value=-1, max_value=60_001) | json_values,
        "lr": st.floats() | st.integers(min_value=-(10**400), max_value=10**400),
        "epochs": st.integers(min_value=-1, max_value=2000),
        "dropout": st.floats(),
        "val_fraction": st.floats(),
        "seed": st.integers(min_value=-1, max_value=2**70),
        "batch_norm": json_values,
    },
)


def _parse(value: Any) -> RunConfig | None:
    """from_dict, allowing only a ConfigError that names a field in its message."""
    try:
        return RunConfig.from_dict(value)
    except ConfigError as err:
        assert isinstance(err.field, str) and str(err).startswith(f"{err.field}: "), err
        return None


def _check_accepted(cfg: RunConfig) -> None:
    hash(cfg)
    text = json.dumps(cfg.to_dict(), allow_nan=False)  # plain JSON: no NaN, no infinity
    assert RunConfig.from_dict(json.loads(text)) == cfg
    assert isinstance(cfg.label(), str) and cfg.label()
    assert cfg.depth == len(cfg.hidden) and math.isfinite(cfg.lr) and cfg.lr > 0
    try:
        with torch.device("meta"):
            build_model(cfg)
    except ConfigError:
        pass  # e.g. four LeNet stages on the 20x20 crop: refused by name, like the parser does


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_is_a_config_or_a_config_error(value: Any) -> None:
    cfg = _parse(value)
    if cfg is not None:
        _check_accepted(cfg)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_dicts | valid_like)
def test_any_json_object_is_a_config_or_a_config_error(value: dict[str, Any]) -> None:
    cfg = _parse(value)
    if cfg is not None:
        _check_accepted(cfg)
    # What a config.json file on disk gives: the same verdict after a trip through JSON text.
    try:
        text = json.dumps(value)
    except (ValueError, OverflowError):
        return
    again = _parse(json.loads(text))
    assert (again is None) == (cfg is None) and (again == cfg or cfg is None)


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(st.none() | st.integers() | st.booleans() | st.tuples(st.integers()), json_values,
                       min_size=1, max_size=3))  # fmt: skip
def test_keys_that_are_not_text_are_a_config_error(value: dict[Any, Any]) -> None:
    assert _parse(value) is None
