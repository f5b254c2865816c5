"""The schema of every file of a run: what a reader accepts before it uses anything.

A run folder may come from anywhere (an import, a copy, a hand edit), so
every file is checked when it is read, with the same rules for the listing,
the pages, the CLI and the import:

- ``config.json``: a valid :class:`~mnist_core.config.RunConfig` whose model
  has at most :data:`MAX_PARAMETERS` parameters, counted from the layer sizes
  before anything is built;
- ``run.json``, ``summary.json`` and each point of ``history.json``: pydantic
  models with strict types (no ``"abc"`` where a number belongs), ranges
  (accuracies in [0, 1], counts and times not negative, every integer within
  int64) and bounded text and lists; keys this version does not know are
  kept only if they are small plain JSON;
- ``weights.pt`` and ``checkpoint.pt``: exactly the tensors of the
  configuration's model; a checkpoint's position, optimizer and scheduler
  state shaped as this configuration's optimizer and scheduler would write
  them (see :func:`check_checkpoint`).

Anything else raises :class:`~mnist_core.errors.CorruptRun` with one line
naming the file, the field and what is wrong; listings then show the run as
broken with that line.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .config import RunConfig
from .errors import ConfigError, CorruptRun

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

    @model_validator(mode="after")
    def _step_has_its_means(self) -> HistoryPoint:
        if self.kind == "step" and (self.loss is None or self.train_acc is None or self.n is None):
            raise ValueError("a step point needs loss, train_acc and n")
        return self


class Checkpoint(BaseModel):
    """The plain fields of ``checkpoint.pt``; its tensors are checked by :func:`check_checkpoint`."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid", arbitrary_types_allowed=True)

    epoch: Count
    step_in_epoch: Annotated[int, Field(ge=0, le=2**40)]
    elapsed_s: NonNegative
    model: Any
    optimizer: Any
    scheduler: Any
    history: list[Any] | None = None


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
        raise CorruptRun(f"{file} has an unknown status {_short(status)}")
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
            raise CorruptRun(f"{file}: point {i}: {_first_error(exc)}") from None
    return out


def _validate(model: type[BaseModel], data: dict[str, Any], file: str) -> dict[str, Any]:
    try:
        return model.model_validate(data).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise CorruptRun(f"{file}: {_first_error(exc)}") from None


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


def expected_state(cfg: RunConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Tensor names, shapes and types of the configuration's model, built on no device."""
    from .models import build_model  # models imports torch.nn; keep this module light to import

    config(cfg.to_dict())  # the parameter cap, before building even on the meta device
    try:
        with torch.device("meta"):
            model = build_model(cfg)
    except ConfigError as exc:
        raise CorruptRun(f"config.json describes no buildable model: {exc}") from exc
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def check_state(state: Any, expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]], what: str) -> None:
    """``state`` holds exactly the expected tensors, plain, on the CPU, of the right shapes and types."""
    if not isinstance(state, dict) or set(state) != set(expected):
        raise CorruptRun(f"{what} does not hold the tensors of the model in config.json.")
    for key, (shape, dtype) in expected.items():
        t = state[key]
        if not _plain_tensor(t):
            raise CorruptRun(f"{what}: {key} is not a plain tensor.")
        if tuple(t.shape) != shape or t.dtype != dtype:
            raise CorruptRun(
                f"{what}: {key} has shape {tuple(t.shape)} ({t.dtype}); the model needs {shape} ({dtype})."
            )


def weights_bytes_bound(expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]]) -> int:
    """The most bytes a ``weights.pt`` of these tensors can take (data plus generous overhead)."""
    data = sum(math.prod(shape) * dtype.itemsize for shape, dtype in expected.values())
    return data + 4096 * len(expected) + (1 << 20)


def checkpoint_bytes_bound(expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]]) -> int:
    """Model, optimizer state (at most three copies of it) and the history."""
    return 4 * weights_bytes_bound(expected) + MAX_HISTORY_BYTES


# -- checkpoints ----------------------------------------------------------------------------------


def check_checkpoint(ckpt: Any, cfg: RunConfig, file: str = "checkpoint.pt") -> dict[str, Any]:
    """A training checkpoint of ``cfg``, checked; its fields (history checked, or None).

    Beyond the types of its fields: the model holds exactly the
    configuration's tensors; the optimizer's state is what this
    configuration's optimizer writes (the same groups, hyper-parameters of
    the same types, per-parameter state of the same names and shapes) and so
    is the scheduler's; the position lies within the run.
    """
    if not isinstance(ckpt, dict) or not all(isinstance(k, str) for k in ckpt):
        raise CorruptRun(f"{file} is not a training checkpoint of this app.")
    try:
        fields = Checkpoint.model_validate(ckpt)
    except ValidationError as exc:
        raise CorruptRun(f"{file} is not a training checkpoint of this app: {_first_error(exc)}") from None
    if fields.epoch > cfg.epochs:
        raise CorruptRun(f"{file}: epoch {fields.epoch} is past the run's {cfg.epochs} epochs.")
    expected = expected_state(cfg)
    check_state(fields.model, expected, f"{file}'s model")
    reference_opt, reference_sched = _reference_states(cfg)
    shapes = [shape for key, (shape, _) in expected.items() if _is_parameter(key, cfg)]
    _check_optimizer(fields.optimizer, reference_opt, shapes, f"{file}'s optimizer state")
    if reference_sched is not None and fields.scheduler is not None:  # None: a fresh schedule
        _same_shape(fields.scheduler, reference_sched, f"{file}'s scheduler state")
    elif fields.scheduler is not None:  # the app saves None for a run without a schedule
        raise CorruptRun(f"{file} holds a scheduler state, but the run's configuration has no schedule.")
    points = None if fields.history is None else history(fields.history, f"{file}'s history")
    return {
        "epoch": fields.epoch, "step_in_epoch": fields.step_in_epoch, "model": fields.model,
        "optimizer": fields.optimizer, "scheduler": fields.scheduler, "elapsed_s": fields.elapsed_s,
        "history": points,
    }  # fmt: skip


def _is_parameter(key: str, cfg: RunConfig) -> bool:
    return not key.endswith(("running_mean", "running_var", "num_batches_tracked"))


def _reference_states(cfg: RunConfig) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What this configuration's optimizer (after one step) and scheduler write, on a one-weight model."""
    from .train import make_optimizer, make_scheduler

    model = torch.nn.Linear(1, 1, bias=False)
    opt = make_optimizer(cfg, model)
    sched = make_scheduler(cfg, opt, 10)
    model.weight.grad = torch.ones_like(model.weight)
    opt.step()
    return opt.state_dict(), (sched.state_dict() if sched is not None else None)


_DEVICE_FLAGS = ("fused", "foreach")  # set per device by make_optimizer; either value loads


def _check_optimizer(state: Any, reference: dict[str, Any], shapes: list[tuple[int, ...]], what: str) -> None:
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise CorruptRun(f"{what} is not an optimizer's state (state and param_groups).")
    groups = state["param_groups"]
    (ref_group,) = reference["param_groups"]
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
        raise CorruptRun(f"{what}: expected one parameter group, as the app's optimizer has.")
    group = groups[0]
    if group.get("params") != list(range(len(shapes))):
        raise CorruptRun(f"{what}: its parameter group does not list the model's {len(shapes)} parameters.")
    for key, value in group.items():
        if key == "params":
            continue
        ref = ref_group.get(key, 0.0)  # a scheduler's own keys (initial_lr, max_lr...): plain numbers
        _same_shape(value, ref, f"{what}: {key}")
        # Flags change which state a step reads (amsgrad: max_exp_avg_sq): they must be the app's.
        if isinstance(ref, bool) and key not in _DEVICE_FLAGS and value is not ref:
            raise CorruptRun(f"{what}: {key} is {_short(value)}; this app's optimizer has {ref}.")
    missing = [k for k, v in ref_group.items() if k not in group and not isinstance(v, (bool, type(None)))]
    if missing:
        raise CorruptRun(f"{what}: the parameter group has no {missing[0]}.")
    per_param = state["state"]
    ref_param = next(iter(reference["state"].values()), {})  # SGD without momentum keeps none
    if not isinstance(per_param, dict):
        raise CorruptRun(f"{what}: state is not a mapping of parameters.")
    for index, entry in per_param.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(shapes):
            raise CorruptRun(f"{what}: state of an unknown parameter {_short(index)}.")
        if not isinstance(entry, dict) or (entry and set(entry) != set(ref_param)):
            expected = sorted(ref_param)
            raise CorruptRun(f"{what}: parameter {index} has state {_short(entry)}; expected {expected}.")
        for name, ref in ref_param.items() if entry else ():
            _check_state_value(entry[name], ref, shapes[index], f"{what}: parameter {index}'s {name}")


def _check_state_value(value: Any, ref: Any, shape: tuple[int, ...], what: str) -> None:
    if isinstance(ref, torch.Tensor):
        want = () if ref.dim() == 0 else shape
        ok = _plain_tensor(value) and value.is_floating_point() and tuple(value.shape) == want
        if not ok and ref.dim() == 0 and _number(value):  # older torch stored the step as a number
            return
        if not ok:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CorruptRun(f"{what} is {got}; expected a floating-point tensor of shape {want}.")
    else:
        _same_shape(value, ref, what)


def _same_shape(value: Any, ref: Any, what: str, depth: int = 0) -> None:
    """``value`` has the structure and value types of ``ref`` (text and flags equal, numbers finite)."""
    if depth > MAX_EXTRA_DEPTH:
        raise CorruptRun(f"{what} is nested too deeply.")
    if isinstance(ref, bool) or ref is None:
        if not (value is None or isinstance(value, bool)):
            raise CorruptRun(f"{what} is {_short(value)}; expected true, false or nothing.")
    elif isinstance(ref, (int, float)):
        if not _number(value):
            raise CorruptRun(f"{what} is {_short(value)}; expected a finite number.")
    elif isinstance(ref, str):
        if value != ref:
            raise CorruptRun(f"{what} is {_short(value)}; expected {ref!r}.")
    elif isinstance(ref, dict):
        if not isinstance(value, dict) or set(value) != set(ref):
            raise CorruptRun(f"{what} does not have the fields {sorted(map(str, ref))}.")
        for key, sub in ref.items():
            _same_shape(value[key], sub, f"{what}: {key}", depth + 1)
    elif isinstance(ref, (list, tuple)):
        if not isinstance(value, (list, tuple)) or (len(value) != len(ref)):
            raise CorruptRun(f"{what} is {_short(value)}; expected a list of {len(ref)}.")
        for i, (sub_value, sub_ref) in enumerate(zip(value, ref, strict=True)):
            _same_shape(sub_value, sub_ref, f"{what}[{i}]", depth + 1)
    elif isinstance(ref, torch.Tensor):
        if not _plain_tensor(value) or value.shape != ref.shape:
            raise CorruptRun(f"{what} is not a tensor of shape {tuple(ref.shape)}.")
    else:  # pragma: no cover - a new torch writing a type we do not know: refuse rather than guess
        raise CorruptRun(f"{what} holds a {type(ref).__name__}, which this version cannot check.")


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


def _plain_tensor(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.layout == torch.strided and t.device.type == "cpu"


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return -INT64 <= value <= INT64
    return math.isfinite(value)


def _short(value: Any) -> str:
    """A value in a message: repr cut to 60 characters (a 5000-digit int has no repr at all)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value) if not isinstance(value, torch.Tensor) else f"a tensor of shape {tuple(value.shape)}"
    return text if len(text) <= 60 else text[:57] + "..."


def _first_error(exc: ValidationError) -> str:
    """The first problem pydantic found, on one line: ``field: message`` (and how many more)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    message = " ".join(first["msg"].removeprefix("Value error, ").split())
    where = ".".join(str(p) for p in first["loc"])  # empty for a check of the whole file
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"
