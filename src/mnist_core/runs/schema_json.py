"""The schema of a run's JSON files: ``config.json``, ``run.json``, ``summary.json``, ``history.json``.

Pydantic models with strict types and ranges, the parameter cap of a
configuration (counted from the layer sizes, before anything is built), and
the small helpers every check shares. See :mod:`.schema` for the whole schema.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ..config import RunConfig
from ..errors import ConfigError, CorruptRun

# The Train page's largest model (8 dense layers of 4096 after a 32-64 CNN) has
# 130 M parameters; 200 M leaves a margin and still fits a laptop (0.8 GB of fp32).
MAX_PARAMETERS = 200_000_000
MAX_SMALL_JSON_BYTES = 4 << 20  # config.json, run.json, summary.json
MAX_HISTORY_BYTES = 64 << 20  # a 1000-epoch run's curve, four points a second
MAX_TEXT = 100_000  # notes, an error message
MAX_EXTRA_DEPTH = 16  # nesting of the values of keys this version does not know
INT64 = 2**63 - 1
STATUSES = ("running", "completed", "stopped", "interrupted", "failed")

Int64 = Annotated[int, Field(ge=-INT64, le=INT64)]
Count = Annotated[int, Field(ge=0, le=INT64)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]  # finite (strict models refuse NaN below)
NonNegative = Annotated[float, Field(ge=0.0)]
Rate = Annotated[float, Field(ge=0.0, allow_inf_nan=True)]  # a measurement over ~0 s may be infinite
Measured = Annotated[float, Field(allow_inf_nan=True)]  # a loss may diverge to NaN
ShortText = Annotated[str, Field(max_length=1000)]
LongText = Annotated[str, Field(max_length=MAX_TEXT)]


def _cut(value: Any) -> Any:
    """A text too long to show is cut, not refused (a failed run's error message is all it has)."""
    return value[:MAX_TEXT] + "..." if isinstance(value, str) and len(value) > MAX_TEXT else value


CutText = Annotated[str, BeforeValidator(_cut)]
RunId = Annotated[str, Field(max_length=200)]
Row = Annotated[list[Count], Field(max_length=100)]
Base64 = Annotated[str, Field(max_length=1_700_000, pattern=r"^[A-Za-z0-9+/]*={0,2}$")]


class _Strict(BaseModel):
    """No coercion (``"1"`` is not a number, ``true`` not an integer), no NaN unless a field allows it."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="allow")

    @model_validator(mode="after")
    def _small_extras(self) -> _Strict:
        for key, value in (self.model_extra or {}).items():
            _check_plain_json(value, key)
        return self


class RunMeta(_Strict):
    """``run.json``: identity, status and what the user wrote about the run."""

    id: RunId | None = None
    name: ShortText | None = None
    status: Literal[STATUSES]  # type: ignore[valid-type]
    created: ShortText = ""
    updated: ShortText = ""
    parent: RunId | None = None
    tags: Annotated[list[ShortText], Field(max_length=1000)] = []
    notes: LongText = ""
    error: CutText | None = None
    kind: ShortText | None = None  # a saved version: "correction", ...
    details: dict[str, Any] | None = None  # what the version changed (plain JSON, checked as extras)
    imported_from: RunId | None = None
    imported: ShortText | None = None

    @model_validator(mode="after")
    def _small_details(self) -> RunMeta:
        if self.details is not None:
            _check_plain_json(self.details, "details")
        return self


class ReliabilityBins(_Strict):
    """A reliability diagram: per confidence bin, how many images, their mean confidence and accuracy."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")
    counts: Annotated[list[Count], Field(min_length=1, max_length=100)]
    confidence: Annotated[list[Fraction | None], Field(max_length=100)]
    accuracy: Annotated[list[Fraction | None], Field(max_length=100)]

    @model_validator(mode="after")
    def _same_length(self) -> ReliabilityBins:
        if not len(self.counts) == len(self.confidence) == len(self.accuracy):
            raise ValueError("reliability: counts, confidence and accuracy need one entry per bin")
        return self


class Summary(_Strict):
    """``summary.json``: the end-of-run figures (every one optional)."""

    epochs_done: Count | None = None
    test_accuracy: Fraction | None = None
    val_accuracy: Fraction | None = None
    sample_accuracy: Fraction | None = None
    test_loss: Measured | None = None
    per_class_accuracy: Annotated[list[Fraction], Field(max_length=100)] | None = None
    confusion: Annotated[list[Row], Field(max_length=100)] | None = None
    misclassified: Annotated[list[Count], Field(max_length=10_000_000)] | None = None
    train_time_s: NonNegative | None = None
    time_per_epoch_s: NonNegative | None = None
    samples_per_s: Rate | None = None
    correction_s: NonNegative | None = None
    parameters: Count | None = None
    macs: Count | None = None
    flops: Count | None = None
    weights_bytes: Count | None = None
    checkpoint_bytes: Count | None = None
    latency_p50_ms: Rate | None = None
    latency_p95_ms: Rate | None = None
    throughput_images_s: Rate | None = None
    threads: Count | None = None
    device: ShortText | None = None
    matmul_precision: ShortText | None = None
    torch_version: ShortText | None = None
    energy_kwh: Rate | None = None
    co2_kg: Rate | None = None
    co2_country: ShortText | None = None
    energy_estimated: bool | None = None
    energy_method: ShortText | None = None
    # Per-image hits and calibration on the test set (significance.py): 10 M images at most.
    test_correct_bits: Base64 | None = None
    test_n: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    ece: Fraction | None = None
    reliability: ReliabilityBins | None = None

    @model_validator(mode="after")
    def _bits_match_n(self) -> Summary:
        if (self.test_correct_bits is None) != (self.test_n is None):
            raise ValueError("test_correct_bits and test_n come together")
        packed = None if self.test_n is None else (self.test_n + 7) // 8  # bytes, then base64 length
        if packed is not None and len(self.test_correct_bits or "") != 4 * ((packed + 2) // 3):
            raise ValueError(f"test_correct_bits does not hold the {self.test_n} bits of test_n")
        return self


class LayerPoint(BaseModel):
    """One weight layer's figures at a step point (``layerstats.LayerStat``)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    name: ShortText
    grad_norm: Measured | None = None
    update_ratio: Measured | None = None
    dead_share: Fraction | None = None
    saturated_share: Fraction | None = None


class HistoryPoint(BaseModel):
    """A point of the learning curve (``train.ProgressEvent.to_dict()``, plus ``n`` on step points)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    kind: Literal["step", "epoch"]
    epoch: Count
    epochs: Count | None = None
    step: Count | None = None
    total_steps: Count | None = None
    samples: Count | None = None
    loss: Measured | None = None
    train_acc: Measured | None = None
    lr: Measured | None = None
    elapsed_s: Measured | None = None
    samples_per_s: Measured | None = None
    eta_s: Measured | None = None
    val_loss: Measured | None = None
    val_acc: Measured | None = None
    n: Count | None = None  # images behind a step point (epoch means are weighted by it)
    layers: Annotated[list[LayerPoint], Field(max_length=1024)] | None = None  # per-layer statistics

    @model_validator(mode="after")
    def _step_has_its_means(self) -> HistoryPoint:
        if self.kind == "step" and (self.loss is None or self.train_acc is None or self.n is None):
            raise ValueError("a step point needs loss, train_acc and n")
        return self


# -- reading each file -------------------------------------------------------------------------


def config(data: Any, file: str = "config.json") -> RunConfig:
    """``config.json`` as a :class:`RunConfig`, refused above :data:`MAX_PARAMETERS` parameters."""
    try:
        _check_plain_json(data, "config")
        cfg = RunConfig.from_dict(data)
    except (ConfigError, _Invalid) as exc:
        raise CorruptRun(f"{file} is not a valid configuration: {exc}") from exc
    n = parameter_count(cfg)
    if n > MAX_PARAMETERS:
        raise CorruptRun(
            f"{file} describes a model of {n:,} parameters; at most {MAX_PARAMETERS:,} are accepted "
            "(the largest model the Train page makes has about 130 million)."
        )
    return cfg


def meta(data: Any, file: str = "run.json") -> dict[str, Any]:
    """``run.json``, checked; the keys it had (a missing optional key stays missing)."""
    if not isinstance(data, dict):
        raise CorruptRun(f"{file} is not a JSON object")
    status = data.get("status")
    if not isinstance(status, str) or status not in STATUSES:  # the message the app always gave
        raise CorruptRun(f"{file} has an unknown status {short_repr(status)}")
    return _validate(RunMeta, data, file)


def summary(data: Any, file: str = "summary.json") -> dict[str, Any]:
    """``summary.json``, checked; the keys it had."""
    if not isinstance(data, dict):
        raise CorruptRun(f"{file} is not a JSON object")
    return _validate(Summary, data, file)


def history(data: Any, file: str = "history.json") -> list[dict[str, Any]]:
    """The learning curve, checked; each point with every known key (None where it had none)."""
    if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
        raise CorruptRun(f"{file} is not a list of points (JSON objects)")
    out = []
    for i, point in enumerate(data):
        try:
            out.append(HistoryPoint.model_validate(point).model_dump())
        except ValidationError as exc:
            raise CorruptRun(f"{file}: point {i}: {first_error(exc)}") from None
    return out


def _validate(model: type[BaseModel], data: dict[str, Any], file: str) -> dict[str, Any]:
    try:
        return model.model_validate(data).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise CorruptRun(f"{file}: {first_error(exc)}") from None


# -- parameters, before anything is built -----------------------------------------------------


def parameter_count(cfg: RunConfig) -> int:
    """Parameters of ``build_model(cfg)``, from the layer sizes alone (no allocation, microseconds).

    Mirrors :mod:`mnist_core.models`; ``tests/unit/test_runs.py`` checks it
    against the built models.
    """
    total = 0
    if cfg.model == "cnn":
        side, channels = cfg.crop, 1
        for out in cfg.cnn_channels:
            if cfg.cnn_style == "lenet":  # 5x5 conv with bias, then a 2x2 pool
                total += channels * out * 25 + out
                side = (side - 4) // 2
            else:  # 3x3 conv without bias, batch norm (weight and bias), pool
                total += channels * out * 9 + 2 * out
                side //= 2
            channels = out
        sizes = [channels * max(side, 0) ** 2, *cfg.hidden, 10]
        batch_norm = False
    else:
        sizes = [cfg.input_size, *cfg.hidden, 10]
        batch_norm = cfg.batch_norm
    for n_in, n_out in itertools.pairwise(sizes):
        total += n_in * n_out + n_out
    if batch_norm:
        total += 2 * sum(cfg.hidden)
    return total


# -- helpers -----------------------------------------------------------------------------------------


class _Invalid(ValueError):
    """A value of a key this version does not know is not small plain JSON."""


def _check_plain_json(value: Any, where: str) -> None:
    """Plain JSON (dict, list, text, int64, float, bool, null) of bounded depth; iterative."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_EXTRA_DEPTH:
            raise _Invalid(f"{where} is nested more than {MAX_EXTRA_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if not -INT64 <= item <= INT64:
                raise _Invalid(f"{where} holds an integer of {item.bit_length()} bits (at most 64)")
        elif isinstance(item, str):
            if len(item) > MAX_TEXT:
                raise _Invalid(f"{where} holds a text of {len(item):,} characters (at most {MAX_TEXT:,})")
        else:
            raise _Invalid(f"{where} holds a {type(item).__name__}")


def short_repr(value: Any) -> str:
    """A value in a message: repr cut to 60 characters (a 5000-digit int has no repr at all)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value) if not isinstance(value, torch.Tensor) else f"a tensor of shape {tuple(value.shape)}"
    return text if len(text) <= 60 else text[:57] + "..."


def first_error(exc: ValidationError) -> str:
    """The first problem pydantic found, on one line: ``field: message`` (and how many more)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    message = " ".join(first["msg"].removeprefix("Value error, ").split())
    where = ".".join(str(p) for p in first["loc"])  # empty for a check of the whole file
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"
