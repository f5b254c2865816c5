"""A memory of the user's corrected drawings, consulted beside the network (issue 27).

Fine-tuning on a drawing and its re-drawings teaches the habit only partly
(fresh re-drawings read right 19% -> 78% in ``scripts/correction_study.py``)
and costs test accuracy (a worst correction lost 0.33 points). A memory does
better at no cost: a corrected version keeps the drawing and its re-drawings
(:mod:`redraw`) as *keys*, model inputs ``(784,)``, each with its label and a
*radius*: ``reach`` times the distance from that key to the nearest training
image of another class. An input that falls within a key's radius is read as
that key's label (the nearest such key decides); everything else is read by
the network alone. By construction no training image of another class is
ever taken, and MNIST test images almost never come that close to a user's
drawing (with ``reach`` 0.9: 3-7 test images matched per correction, nearly
all of the taught class).

Distances are Euclidean, between normalised inputs: the app's preprocessing
has already centred and scaled every drawing as MNIST's were, so what is
left between two repeats of a habit is slant, pen width and wobble.

The memory is a forward hook on the model (:func:`attach`), so *every*
reading goes through it: :func:`infer.predict`, :func:`metrics.evaluate`
(test accuracy is measured with it), the Draw page, the CLI, "All models".
A matched input keeps the network's logits except the memory's label, which
is raised until it has probability :data:`CONFIDENCE` (never lowered).
Saved beside ``weights.pt`` as ``memory.pt`` (three tensors, read back with
``torch.load(weights_only=True)``); a run without one loads as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .errors import CorruptRun

MEMORY_FILE = "memory.pt"
CONFIDENCE = 0.9  # a remembered input's label gets at least this probability
MAX_KEYS = 65_536  # refuse a memory file larger than this (64 MB of keys at 784 values)
_CHUNK = 64  # keys measured against the training set at a time (64 x 54,000 distances)


@dataclass(frozen=True, eq=False)
class Memory:
    """Remembered inputs: ``keys`` float32 ``(K, D)``, ``labels`` int64 ``(K,)``, ``radius`` float32 ``(K,)``.

    Called as a forward hook (``hook(module, args, output)``): returns the
    logits with remembered inputs read as their key's label.
    """

    keys: torch.Tensor
    labels: torch.Tensor
    radius: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        del module
        return self.apply(args[0], output)

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """For each input ``(N, ...)``: the index of the nearest key within its radius, or -1."""
        flat = x.detach().reshape(x.shape[0], -1).float()
        if len(self) == 0 or flat.shape[0] == 0:
            return torch.full((flat.shape[0],), -1, dtype=torch.int64, device=flat.device)
        dist = torch.cdist(flat, self.keys.to(flat.device))  # (N, K)
        dist = dist.masked_fill(dist >= self.radius.to(flat.device), math.inf)
        best, index = dist.min(dim=1)
        return torch.where(torch.isfinite(best), index, torch.full_like(index, -1))

    def apply(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` ``(N, C)``, each remembered input's label raised to probability :data:`CONFIDENCE`."""
        index = self.nearest(x)
        hit = index >= 0
        if not bool(hit.any()):
            return logits
        labels = self.labels.to(logits.device)[index[hit]].view(-1, 1)
        out = logits.float().clone()  # written out of place: saliency maps take gradients through it
        rows = out[hit]
        others = rows.scatter(1, labels, -math.inf).logsumexp(dim=1, keepdim=True)
        wanted = others + math.log(CONFIDENCE / (1.0 - CONFIDENCE))  # softmax gives the label CONFIDENCE
        out[hit] = rows.scatter(1, labels, torch.maximum(rows.gather(1, labels), wanted))
        return out.to(logits.dtype)

    def state(self) -> dict[str, torch.Tensor]:
        """What ``memory.pt`` holds: plain CPU tensors."""
        return {"keys": self.keys.cpu(), "labels": self.labels.cpu(), "radius": self.radius.cpu()}


def remember(
    x: torch.Tensor, labels: torch.Tensor, train_x: torch.Tensor, train_y: torch.Tensor, reach: float
) -> Memory:
    """A memory of inputs ``x`` ``(K, 1, 28, 28)`` with ``labels`` ``(K,)``.

    Each radius is ``reach`` times the key's distance to the nearest of the
    training images ``train_x`` (labels ``train_y``) of another class than its own.
    """
    keys = x.detach().reshape(x.shape[0], -1).float().cpu()
    labels = labels.detach().to(torch.int64).reshape(-1).cpu()
    flat = train_x.detach().reshape(train_x.shape[0], -1).float().cpu()
    ys = train_y.detach().to(torch.int64).cpu()
    squares = flat.pow(2).sum(dim=1)  # |t|^2 once; |k - t|^2 = |k|^2 + |t|^2 - 2 k.t (3x cdist's speed)
    nearest = []
    for start in range(0, keys.shape[0], _CHUNK):
        chunk = keys[start : start + _CHUNK]
        dist2 = torch.addmm(squares[None, :], chunk, flat.T, alpha=-2.0)  # (k, N) without |k|^2
        dist2 = dist2.masked_fill(labels[start : start + _CHUNK, None] == ys[None, :], math.inf)
        nearest.append((dist2.min(dim=1).values + chunk.pow(2).sum(dim=1)).clamp(min=0.0).sqrt())
    far = torch.cat(nearest) if nearest else torch.zeros(0)
    far = torch.where(torch.isfinite(far), far, torch.zeros_like(far))  # no other class seen: match nothing
    return Memory(keys, labels, (reach * far).float())


def merged(first: Memory | None, second: Memory | None) -> Memory | None:
    """Both memories' keys (a version keeps its parent's memory and adds its own)."""
    if first is None or len(first) == 0:
        return second
    if second is None or len(second) == 0:
        return first
    return Memory(
        torch.cat([first.keys, second.keys]),
        torch.cat([first.labels, second.labels]),
        torch.cat([first.radius, second.radius]),
    )


def attach(model: nn.Module, memory: Memory | None) -> nn.Module:
    """Make ``model`` consult ``memory`` on every forward pass (replacing any memory it had); returns it."""
    detach(model)
    if memory is not None and len(memory) > 0:
        model.register_forward_hook(memory)
    return model


def detach(model: nn.Module) -> nn.Module:
    """Remove the memory from ``model`` (the network alone reads); returns it."""
    for key, hook in list(model._forward_hooks.items()):
        if isinstance(hook, Memory):
            del model._forward_hooks[key]
    return model


def memory_of(model: nn.Module) -> Memory | None:
    """The memory ``model`` consults, if any."""
    for hook in model._forward_hooks.values():
        if isinstance(hook, Memory):
            return hook
    return None


def from_state(state: Any, path: str, features: int = 784) -> Memory:
    """Check what ``torch.load(weights_only=True)`` read from ``memory.pt``; a bad file is a CorruptRun."""
    if not isinstance(state, dict) or set(state) != {"keys", "labels", "radius"}:
        raise CorruptRun(f"{path} is not a memory of drawings (expected keys, labels and radius)")
    keys, labels, radius = state["keys"], state["labels"], state["radius"]
    if not all(isinstance(t, torch.Tensor) for t in (keys, labels, radius)):
        raise CorruptRun(f"{path} holds something other than tensors")
    k = labels.shape[0] if labels.ndim == 1 else -1
    if (
        k < 0 or k > MAX_KEYS or keys.dtype != torch.float32 or tuple(keys.shape) != (k, features)
        or labels.dtype != torch.int64 or radius.dtype != torch.float32 or tuple(radius.shape) != (k,)
    ):  # fmt: skip
        raise CorruptRun(f"{path} does not hold a memory of {features}-pixel drawings: its tensors differ")
    if k and (int(labels.min()) < 0 or int(labels.max()) > 9 or not bool(torch.isfinite(radius).all())):
        raise CorruptRun(f"{path} holds a label outside 0-9 or a radius that is not a number")
    return Memory(keys.contiguous(), labels.contiguous(), radius.contiguous())


def max_bytes(features: int = 784) -> int:
    """The most bytes a ``memory.pt`` may take (keys, labels and radii of :data:`MAX_KEYS`, plus overhead)."""
    return MAX_KEYS * (features * 4 + 8 + 4) + 64 * 1024
