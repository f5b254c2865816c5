"""The schema of a run's tensor files: ``weights.pt`` and ``checkpoint.pt``.

Exactly the tensors of the configuration's model; a checkpoint's position,
optimizer and scheduler state shaped as this configuration's optimizer and
scheduler would write them. See :mod:`.schema` for the whole schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import RunConfig
from ..errors import ConfigError, CorruptRun
from .schema_json import (
    INT64,
    MAX_EXTRA_DEPTH,
    MAX_HISTORY_BYTES,
    Count,
    NonNegative,
    config,
    first_error,
    history,
    short_repr,
)


def expected_state(cfg: RunConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Tensor names, shapes and types of the configuration's model, built on no device."""
    from ..models import build_model  # models imports torch.nn; keep this module light to import

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


# -- checkpoint.pt ----------------------------------------------------------------------------------


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
        raise CorruptRun(f"{file} is not a training checkpoint of this app: {first_error(exc)}") from None
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
    from ..train_step import make_optimizer, make_scheduler

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
            raise CorruptRun(f"{what}: {key} is {short_repr(value)}; this app's optimizer has {ref}.")
    missing = [k for k, v in ref_group.items() if k not in group and not isinstance(v, (bool, type(None)))]
    if missing:
        raise CorruptRun(f"{what}: the parameter group has no {missing[0]}.")
    per_param = state["state"]
    ref_param = next(iter(reference["state"].values()), {})  # SGD without momentum keeps none
    if not isinstance(per_param, dict):
        raise CorruptRun(f"{what}: state is not a mapping of parameters.")
    for index, entry in per_param.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(shapes):
            raise CorruptRun(f"{what}: state of an unknown parameter {short_repr(index)}.")
        if not isinstance(entry, dict) or (entry and set(entry) != set(ref_param)):
            expected = sorted(ref_param)
            raise CorruptRun(f"{what}: parameter {index} has state {short_repr(entry)}; expected {expected}.")
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
            raise CorruptRun(f"{what} is {short_repr(value)}; expected true, false or nothing.")
    elif isinstance(ref, (int, float)):
        if not _number(value):
            raise CorruptRun(f"{what} is {short_repr(value)}; expected a finite number.")
    elif isinstance(ref, str):
        if value != ref:
            raise CorruptRun(f"{what} is {short_repr(value)}; expected {ref!r}.")
    elif isinstance(ref, dict):
        if not isinstance(value, dict) or set(value) != set(ref):
            raise CorruptRun(f"{what} does not have the fields {sorted(map(str, ref))}.")
        for key, sub in ref.items():
            _same_shape(value[key], sub, f"{what}: {key}", depth + 1)
    elif isinstance(ref, (list, tuple)):
        if not isinstance(value, (list, tuple)) or (len(value) != len(ref)):
            raise CorruptRun(f"{what} is {short_repr(value)}; expected a list of {len(ref)}.")
        for i, (sub_value, sub_ref) in enumerate(zip(value, ref, strict=True)):
            _same_shape(sub_value, sub_ref, f"{what}[{i}]", depth + 1)
    elif isinstance(ref, torch.Tensor):
        if not _plain_tensor(value) or value.shape != ref.shape:
            raise CorruptRun(f"{what} is not a tensor of shape {tuple(ref.shape)}.")
    else:  # pragma: no cover - a new torch writing a type we do not know: refuse rather than guess
        raise CorruptRun(f"{what} holds a {type(ref).__name__}, which this version cannot check.")


def _plain_tensor(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.layout == torch.strided and t.device.type == "cpu"


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return -INT64 <= value <= INT64
    return math.isfinite(value)


