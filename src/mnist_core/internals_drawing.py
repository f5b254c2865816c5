"""One drawing read by a model, layer by layer: what each layer puts out, which units decide, the logits.

The Draw page's "inside the network" view. :mod:`mnist_core.internals` looks at a
finished run's weights and at statistics over many test images; this looks at
one input ``(1, 1, 28, 28)``:

- each hidden weight layer's output after its activation (a convolution's
  channel summarised by its mean over the positions, and its feature map);
- each unit's *push* on the predicted class: how much that class's logit
  falls when the unit's output is set to 0 and the later layers are run again
  (an exact "what if this unit were off", not a gradient); for the last
  hidden layer this is exactly ``weight[label, j] * output[j]``;
- for the first layer, the weights of the units that pushed most, as pictures;
- how the output layer builds the logits: it is linear, so every logit is its
  bias plus one term per input unit, exactly; the terms are added largest
  first for the predicted class.

A plain MLP or CNN has no exact "logits after layer 2": every layer feeds
only the next, so reading a hidden layer as logits would need a readout
trained for it (a probe). Instead, per layer, ``knockout`` says how much of
the answer rests on that layer's few strongest units: the predicted class's
probability with its top 1, 5 and 25 units switched off together.

Models are read module by module (an ``nn.Sequential``), never through hooks,
and never switched between train and eval: cached models are shared between
threads. A corrected version also consults a memory of the user's corrected
drawings (:mod:`mnist_core.memory`, a forward hook on the whole model that
module-by-module reading skips): when the memory answers for this drawing,
``DrawingInside.memory`` says so, the logits and probabilities are the
model's actual output (the memory's), and the layers show how the network
alone reads the drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .layer_units import activation_after, layer_name, layer_shape, sequence, unit_pictures
from .memory import memory_of

TOP_UNITS = 8  # per layer, the units that pushed the predicted class most
KNOCKOUT = (1, 5, 25)  # how many of a layer's top units are switched off together
ABLATION_CHUNK = 256  # units switched off one at a time, this many copies per forward pass


@dataclass(frozen=True)
class LayerReading:
    """One hidden weight layer on one input: its output, and what each unit did for the predicted class.

    ``values`` ``(units,)``: the output after the layer's activation (a conv
    channel: its mean over the positions). ``push[k]``: the predicted class's
    logit minus its logit when unit ``k``'s output is set to 0 and the later
    layers are run again (a conv channel: its whole map). ``top``: the units
    with the largest positive push, largest first. ``maps`` (conv only):
    ``(len(top), H, W)``, those channels' feature maps. ``knockout[k]``: the
    predicted class's probability with the layer's top ``k`` units all off.
    """

    index: int
    kind: str
    n_in: int
    n_out: int
    activation: str | None
    values: np.ndarray
    push: np.ndarray
    top: tuple[int, ...]
    maps: np.ndarray | None
    knockout: dict[int, float]

    @property
    def name(self) -> str:
        return layer_name(self.index, self.kind, self.n_in, self.n_out, self.activation)

    @property
    def active_share(self) -> float:
        """Share of the units whose output is above zero (a conv channel: its mean over the positions)."""
        return float((self.values > 0).mean()) if len(self.values) else 0.0


@dataclass(frozen=True)
class BuildUp:
    """The output layer's logits as an exact sum, step by step.

    The output layer is linear, so ``logits = bias + sum_j weight[:, j] * input[j]``
    over its ``n_inputs`` inputs (the last hidden layer's units). ``steps[0]``
    is the bias; each next step adds one input, in the order of its
    contribution to the predicted class (largest first, ``units``); a last
    step adds all the others (when there are any), so ``cumulative[-1]`` is
    the logits.
    ``cumulative`` is ``(len(steps), 10)``.
    """

    steps: tuple[str, ...]
    units: tuple[int, ...]
    cumulative: np.ndarray
    n_inputs: int


@dataclass(frozen=True)
class MemoryAnswer:
    """A corrected version's memory answered for this input, not the network's layers.

    ``label``: the remembered drawing's label (the model's answer);
    ``remembered``: how many drawings the memory holds (corrections and their
    re-drawings); ``network_label`` and ``network_probabilities`` ``(classes,)``:
    what the network alone would have said.
    """

    label: int
    remembered: int
    network_label: int
    network_probabilities: np.ndarray


@dataclass(frozen=True)
class DrawingInside:
    """One input ``(1, 1, 28, 28)`` read by a model, layer by layer.

    ``label``, ``logits`` and ``probabilities`` are the model's actual output
    (with its memory, when it remembers this input: then ``memory`` says so,
    and ``build_up`` ends with the memory's step). ``first_weights``: the first
    layer's weights of ``layers[0].top`` as pictures ``(K, side, side)`` (MLP)
    or ``(K, k, k)`` filters (CNN); None without a hidden layer.
    """

    label: int
    logits: np.ndarray
    probabilities: np.ndarray
    layers: tuple[LayerReading, ...]
    first_weights: np.ndarray | None
    build_up: BuildUp
    memory: MemoryAnswer | None = None


def _run(modules: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for m in modules:
        x = m(x)
    return x


def _switched_off(out: torch.Tensor, rows: list[list[int]]) -> torch.Tensor:
    """``len(rows)`` copies of one output ``(1, units, ...)``, copy ``i`` with ``rows[i]`` units set to 0."""
    copies = out.expand(len(rows), *out.shape[1:]).clone()
    for i, units in enumerate(rows):
        copies[i, units] = 0
    return copies


def inspect_drawing(model: nn.Module, x: torch.Tensor) -> DrawingInside:
    """How ``model`` (an ``nn.Sequential`` in eval mode) reads one input ``x`` ``(1, 1, 28, 28)``.

    The modules are called one by one (no hooks, the model is neither changed
    nor switched between modes: cached models are shared between threads), so
    switching a unit off means running only the layers after it again.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"inspect_drawing reads one image (1, 1, H, W), got {tuple(x.shape)}")
    if any(m.training for m in model.modules()):
        raise ValueError("The model is in training mode: read a model in eval mode.")
    modules = sequence(model)
    positions = [i for i, m in enumerate(modules) if isinstance(m, nn.Linear | nn.Conv2d)]
    last = modules[positions[-1]] if positions else None
    if not isinstance(last, nn.Linear) or positions[-1] != len(modules) - 1:
        raise ValueError("Layer by layer reading needs a model that ends with its linear output layer.")
    param = next(iter(model.parameters()))
    with torch.inference_mode():
        x_in = x.to(param.device, param.dtype)
        h = x_in
        outputs: dict[int, torch.Tensor] = {}  # module index -> its output
        for i, m in enumerate(modules):
            h = m(h)
            outputs[i] = h
        network = h[0].float()
        logits, answer = _with_memory(model, x_in, h)
        label = int(logits.argmax())
        layers = []
        for k, pos in enumerate(positions[:-1], start=1):
            end, activation = activation_after(modules, pos)
            layers.append(_read_layer(modules, pos, end, activation, outputs[end], network, label, k))
        inputs = outputs[positions[-1] - 1] if positions[-1] else x_in
        build = _build_up(last, inputs.flatten(1)[0].float(), label)
    if answer is not None:  # the last step: what the memory made of the network's logits
        build = BuildUp(
            (*build.steps, "memory"), build.units,
            np.concatenate([build.cumulative, logits.cpu().numpy()[None]]), build.n_inputs,
        )  # fmt: skip
    first = _first_weights(modules[positions[0]], layers[0].top) if layers else None
    probabilities = torch.softmax(logits, 0).cpu().numpy()
    return DrawingInside(label, logits.cpu().numpy(), probabilities, tuple(layers), first, build, answer)


def _with_memory(
    model: nn.Module, x: torch.Tensor, out: torch.Tensor
) -> tuple[torch.Tensor, MemoryAnswer | None]:
    """The model's actual logits ``(classes,)`` for input ``x`` ``(1, ...)`` whose network output is ``out``.

    The memory (a forward hook on the whole model, skipped by module-by-module
    reading) is applied as the model's own forward pass applies it; a
    :class:`MemoryAnswer` when it answered for this input.
    """
    network = out[0].float()
    memory = memory_of(model)
    if memory is None or int(memory.nearest(x)[0]) < 0:
        return network, None
    actual = memory.apply(x, out)[0].float()
    answer = MemoryAnswer(
        int(actual.argmax()), len(memory), int(network.argmax()), torch.softmax(network, 0).cpu().numpy()
    )
    return actual, answer


def _read_layer(
    modules: list[nn.Module], pos: int, end: int, activation: str | None, out: torch.Tensor,
    logits: torch.Tensor, label: int, index: int,
) -> LayerReading:
    """Layer ``modules[pos]``, whose output after its activation is ``out`` = ``modules[end]``'s output."""
    tail = modules[end + 1 :]
    push = _pushes(tail, out, float(logits[label]), label)
    ranked = torch.argsort(push, descending=True, stable=True)
    order: list[int] = ranked[push[ranked] > 0].tolist()  # the units that pushed the class up
    wanted = [k for k in KNOCKOUT if k <= len(order)]
    knockout: dict[int, float] = {}
    if wanted:
        probs = torch.softmax(_run(tail, _switched_off(out, [order[:k] for k in wanted])).float(), 1)
        knockout = {k: float(p) for k, p in zip(wanted, probs[:, label].cpu(), strict=True)}
    top = tuple(order[:TOP_UNITS])
    values = (out[0].float().flatten(1).mean(1) if out.ndim > 2 else out[0].float()).cpu().numpy()
    maps = out[0, list(top)].float().cpu().numpy() if out.ndim == 4 else None
    kind, n_in, n_out = layer_shape(modules[pos])  # type: ignore[arg-type]
    return LayerReading(index, kind, n_in, n_out, activation, values, push.numpy(), top, maps, knockout)


def _pushes(tail: list[nn.Module], out: torch.Tensor, logit: float, label: int) -> torch.Tensor:
    """``push[u]`` for every unit of ``out`` ``(1, units, ...)``, the output that ``tail`` reads.

    A unit already at 0 pushed nothing: its push is exactly 0, not computed.
    When the tail starts with a linear layer (eval dropout aside), the switched
    copies skip it: without unit ``u`` its output is the full one minus
    ``weight[:, u] * out[u]`` (a 3 x 1024 MLP: about 3x less work).
    """
    push = torch.zeros(out.shape[1])
    live = out[0].flatten(1).ne(0).any(1) if out.ndim > 2 else out[0].ne(0)
    ids = live.nonzero().flatten().cpu()
    linear, after = _linear_head(tail, out)
    full = None if linear is None else linear(out.flatten(1))  # (1, next units)
    for start in range(0, len(ids), ABLATION_CHUNK):
        chunk = ids[start : start + ABLATION_CHUNK]
        if linear is None or full is None:
            rows = _run(tail, _switched_off(out, [[int(u)] for u in chunk]))
        else:
            on_device = chunk.to(out.device)
            rows = _run(after, full - (linear.weight[:, on_device] * out[0, on_device]).T)
        push[chunk] = logit - rows[:, label].float().cpu()
    return push


def _linear_head(tail: list[nn.Module], out: torch.Tensor) -> tuple[nn.Linear | None, list[nn.Module]]:
    """The tail's first module that changes values, when it is a linear layer, and the modules after it."""
    if out.ndim != 2:
        return None, tail
    for i, m in enumerate(tail):
        if isinstance(m, nn.Linear):
            return m, tail[i + 1 :]
        if not isinstance(m, nn.Dropout | nn.Identity | nn.Flatten):  # identities in eval mode
            break
    return None, tail


def _build_up(last: nn.Linear, inputs: torch.Tensor, label: int, top: int = TOP_UNITS) -> BuildUp:
    """The output layer's logits from its bias, then input by input (``inputs`` ``(n,)``)."""
    parts = (last.weight.float() * inputs[None, :]).cpu()  # (10, n): input j's share of each logit
    bias = last.bias.float().cpu() if last.bias is not None else torch.zeros(parts.shape[0])
    order = [int(j) for j in torch.argsort(parts[label], descending=True, stable=True)[:top]]
    rows = [bias]
    for j in order:
        rows.append(rows[-1] + parts[:, j])
    steps = ["bias", *(f"+ unit {j}" for j in order)]
    rest = len(inputs) - len(order)
    if rest:
        rows.append(bias + parts.sum(1))
        steps.append(f"+ the other {rest}")
    return BuildUp(tuple(steps), tuple(order), torch.stack(rows).numpy(), len(inputs))


def _first_weights(first: nn.Module, units: tuple[int, ...]) -> np.ndarray | None:
    """The first layer's weights of ``units`` as pictures (the layout of :func:`first_layer_images`)."""
    assert isinstance(first, nn.Linear | nn.Conv2d)
    found = unit_pictures(first)
    return None if found is None else found[1][list(units)].numpy()
