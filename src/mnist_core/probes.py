"""Linear readouts per layer (probes): how much of the answer each layer already holds.

A plain network has no "logits after layer 2": every layer feeds only the
next. A *probe* supplies one: a linear map from a layer's outputs to the
classes, fitted on the run's own training images while the model stays as it
is. Its accuracy on test images says how linearly readable the digit is at
that depth; on one drawing, it says how the predicted class's probability
grows layer by layer. The positions read are:

- ``pixels``: the input image itself (a linear model on the pixels);
- ``layer k``: hidden weight layer ``k``'s output after its activation (a
  convolution's channels averaged over a :data:`POOL` x :data:`POOL` grid);
- ``output``: the model's own logits (exact, no probe).

Each probe is a ridge regression onto one-hot targets, solved in closed form
(deterministic, no learning rate, a fraction of a second for 1,024 units),
followed by one scale fitted so that ``softmax(scale * scores)`` has the least
cross-entropy on the fitting images (a temperature: it changes
probabilities, not accuracy). Fitted once per run on :data:`FIT_IMAGES`
training images, measured on :data:`TEST_IMAGES` test images, and kept beside
the run in ``probes.npz`` (plain arrays and a JSON header, read with
``allow_pickle=False``), refitted when the run's weights change.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import load_split
from .errors import CorruptRun, DatasetUnavailable, MnistLabError
from .fsutil import atomic_write
from .layer_units import activation_after, layer_name, layer_shape, sequence, weight_positions
from .memory import memory_of
from .runs import load_model, load_run

PathLike = str | os.PathLike[str]

FIT_IMAGES = 5000  # training images each probe is fitted on
TEST_IMAGES = 2000  # test images its accuracy is measured on (as the Inside view's statistics)
POOL = 4  # a conv layer's channel is averaged to POOL x POOL positions before its probe
RIDGE = 1e-3  # ridge penalty, relative to the mean variance of the layer's outputs
BATCH = 500
FILE = "probes.npz"
VERSION = 1
MAX_FILE_BYTES = 256 * 1024 * 1024
FIT_RATE = 15e9  # multiply-adds a second that fit_seconds assumes (measured ~30e9 on 2 busy cores)
LOAD_SECONDS = 0.5  # reading and normalising the training split the first time


@dataclass(frozen=True)
class Readout:
    """One position's probe: ``softmax(scale * (features @ weight + bias))``.

    ``weight`` ``(features, classes)`` and ``bias`` ``(classes,)`` float32;
    None for ``output`` (the model's own logits). ``accuracy`` on the test
    images, ``fit_accuracy`` on the fitting images.
    """

    position: str  # "pixels", "layer 1", ..., "output"
    name: str  # "input pixels", the layer's name, "output: the model's logits"
    features: int
    weight: np.ndarray | None
    bias: np.ndarray | None
    scale: float
    accuracy: float
    fit_accuracy: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position, "name": self.name, "features": self.features, "scale": self.scale,
            "accuracy": self.accuracy, "fit_accuracy": self.fit_accuracy,
        }  # fmt: skip


@dataclass(frozen=True)
class Probes:
    """A model's readouts, from the pixels to its output, and what they were fitted and measured on."""

    readouts: tuple[Readout, ...]
    fit_images: int
    test_images: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "fit_images": self.fit_images, "test_images": self.test_images,
            "readouts": [r.as_dict() for r in self.readouts],
        }  # fmt: skip


# -- features and fitting -----------------------------------------------------------------


def _features_of(h: torch.Tensor) -> torch.Tensor:
    """A layer's output ``(B, units)`` or ``(B, C, H, W)`` as probe features ``(B, d)`` (conv: pooled)."""
    if h.ndim == 4:
        h = F.adaptive_avg_pool2d(h, POOL)
    return h.flatten(1).float()


def positions(model: nn.Module) -> list[tuple[str, str]]:
    """``(position, name)`` of what the probes read: the pixels, each hidden layer, the output."""
    modules = sequence(model)
    found = weight_positions(modules)
    out = [("pixels", "input pixels")]
    for k, pos in enumerate(found[:-1], start=1):
        _, activation = activation_after(modules, pos)
        out.append((f"layer {k}", layer_name(k, *layer_shape(modules[pos]), activation)))  # type: ignore[arg-type]
    return [*out, ("output", "output: the model's logits")]


def features(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """What each probe reads for images ``x`` ``(N, 1, 28, 28)``, and the model's logits ``(N, classes)``.

    The list is ``[pixels (N, 784), layer 1 (N, d1), ...]``, one per hidden
    weight layer, each taken after that layer's activation. The model (an
    ``nn.Sequential`` in eval mode) is run module by module: no hooks, nothing
    changed (cached models are shared between threads).
    """
    modules = sequence(model)
    found = weight_positions(modules)
    taps = {activation_after(modules, pos)[0]: k for k, pos in enumerate(found[:-1])}
    param = next(iter(model.parameters()))
    parts: list[list[torch.Tensor]] = [[] for _ in range(len(taps) + 1)]
    logits = []
    with torch.inference_mode():
        for start in range(0, len(x), BATCH):
            h = x[start : start + BATCH].to(param.device, param.dtype)
            parts[0].append(h.flatten(1).float().cpu())
            for i, m in enumerate(modules):
                h = m(h)
                if i in taps:
                    parts[taps[i] + 1].append(_features_of(h).cpu())
            logits.append(h.float().cpu())
    return [torch.cat(p) for p in parts], torch.cat(logits)


def fit_ridge(
    x: torch.Tensor, y: torch.Tensor, classes: int, ridge: float = RIDGE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares from ``x`` ``(N, d)`` onto one-hot ``y`` ``(N,)`` with a ridge penalty: weight, bias.

    Closed form on centred features: ``(X'X + lambda I) W = X'Y`` with
    ``lambda = ridge * trace(X'X) / d`` (scale-free), so a layer whose outputs
    are large or tiny is treated alike. The products are float32 (centred
    features keep them accurate; 4x faster than float64 for 1,024 units), the
    ``d x d`` solve float64 by Cholesky (LU when the matrix is singular: no
    ridge and a unit that never varies). ``weight`` ``(d, classes)``.
    """
    xf = x.float()
    mean = xf.mean(0)
    xc = xf - mean
    target = F.one_hot(y, classes).float()
    target_mean = target.mean(0)
    gram = (xc.T @ xc).double()
    lam = ridge * float(gram.diagonal().mean()) + 1e-12
    gram.diagonal().add_(lam)
    rhs = (xc.T @ (target - target_mean)).double()
    factor, info = torch.linalg.cholesky_ex(gram)  # positive definite with the ridge: 3x faster than LU
    weight = torch.cholesky_solve(rhs, factor) if int(info) == 0 else torch.linalg.solve(gram, rhs)
    bias = target_mean.double() - mean.double() @ weight
    return weight.float(), bias.float()


def fit_scale(scores: torch.Tensor, y: torch.Tensor, steps: int = 30) -> float:
    """The temperature ``s`` minimising the cross-entropy of ``softmax(s * scores)`` (L-BFGS on ``log s``).

    Least-squares scores sit near 0 and 1, so their plain softmax is nearly
    flat; the scale makes the probe's probabilities mean something.
    """
    s = scores.double()
    target = y
    log_scale = torch.tensor(np.log(10.0), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_scale], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(s * log_scale.exp(), target)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(np.exp(float(log_scale.detach())), 1e-3, 1e4))


def fit_probes(
    model: nn.Module, fit_x: torch.Tensor, fit_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
) -> Probes:
    """A probe per position of ``model``, fitted on ``(fit_x, fit_y)``, measured on ``(test_x, test_y)``."""
    names = positions(model)
    fit_feats, fit_logits = features(model, fit_x)
    test_feats, test_logits = features(model, test_x)
    classes = fit_logits.shape[1]
    readouts = []
    for (position, name), xf, xt in zip(names, fit_feats, test_feats, strict=False):
        weight, bias = fit_ridge(xf, fit_y, classes)
        fit_scores, test_scores = xf @ weight + bias, xt @ weight + bias
        readouts.append(
            Readout(
                position, name, xf.shape[1], weight.numpy(), bias.numpy(), fit_scale(fit_scores, fit_y),
                _accuracy(test_scores, test_y), _accuracy(fit_scores, fit_y),
            )
        )  # fmt: skip
    position, name = names[-1]
    memory = memory_of(model)  # the output is the model's answer: a corrected version's memory included
    if memory is not None:
        fit_logits, test_logits = memory.apply(fit_x, fit_logits), memory.apply(test_x, test_logits)
    exact = _accuracy(test_logits, test_y), _accuracy(fit_logits, fit_y)
    readouts.append(Readout(position, name, classes, None, None, 1.0, *exact))
    return Probes(tuple(readouts), len(fit_x), len(test_x))


def _accuracy(scores: torch.Tensor, y: torch.Tensor) -> float:
    return float((scores.argmax(1) == y).double().mean()) if len(y) else float("nan")


def read_drawing(probes: Probes, model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Every position's class probabilities for one input ``x`` ``(1, 1, 28, 28)``: ``(positions, classes)``.

    The last row is the model's own softmax, as the model answers: a
    corrected version whose memory (:mod:`mnist_core.memory`) remembers the
    input answers with the memory, which :func:`features` (module by module)
    skips. The others are the probes' readouts of the network's layers.
    """
    feats, logits = features(model, x)
    memory = memory_of(model)
    if memory is not None:
        logits = memory.apply(x.flatten(1).float(), logits)
    rows = []
    for readout, f in zip(probes.readouts, feats, strict=False):
        assert readout.weight is not None and readout.bias is not None
        scores = f @ torch.from_numpy(readout.weight) + torch.from_numpy(readout.bias)
        rows.append(torch.softmax(scores[0].double() * readout.scale, 0))
    rows.append(torch.softmax(logits[0].double(), 0))
    return torch.stack(rows).numpy()


# -- a run's probes, fitted once and kept beside it -----------------------------------------


def _stamp(run_dir: Path) -> str:
    """Which weights the probes belong to: weights.pt's size and modification time."""
    st = (run_dir / "weights.pt").stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def save(probes: Probes, path: Path, stamp: str) -> None:
    """``probes.npz``: a JSON header (``meta``) and each probe's weight and bias as plain arrays."""
    meta = {"version": VERSION, "stamp": stamp, **probes.as_dict()}
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
    for k, r in enumerate(probes.readouts):
        if r.weight is not None and r.bias is not None:
            arrays[f"w{k}"], arrays[f"b{k}"] = r.weight, r.bias
    with atomic_write(path) as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def load(path: Path, stamp: str) -> Probes | None:
    """The probes saved at ``path`` for weights ``stamp``; None when absent, stale or unreadable."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("version") != VERSION or meta.get("stamp") != stamp:
                return None
            readouts = []
            for k, r in enumerate(meta["readouts"]):
                has = f"w{k}" in npz.files
                weight = np.asarray(npz[f"w{k}"], dtype=np.float32) if has else None
                bias = np.asarray(npz[f"b{k}"], dtype=np.float32) if has else None
                if weight is not None and bias is not None and weight.shape != (r["features"], len(bias)):
                    return None
                readouts.append(
                    Readout(
                        str(r["position"]), str(r["name"]), int(r["features"]), weight, bias,
                        float(r["scale"]), float(r["accuracy"]), float(r["fit_accuracy"]),
                    )
                )  # fmt: skip
        return Probes(tuple(readouts), int(meta["fit_images"]), int(meta["test_images"]))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None  # a damaged cache is fitted again


def saved(run_id: str, runs_dir: PathLike | None = None) -> Probes | None:
    """The run's probes when ``probes.npz`` beside it is fresh, else None: never fits (pages draw at once).

    Raises RunNotFound / CorruptRun when the run cannot be read.
    """
    info = load_run(run_id, runs_dir)
    if not info.has_weights:
        return None
    return load(info.path / FILE, _stamp(info.path))


def fit_seconds(model: nn.Module) -> float:
    """About how many seconds :func:`run_probes` takes to fit ``model``'s probes (a page says so meanwhile).

    From the work: a forward pass over :data:`FIT_IMAGES` + :data:`TEST_IMAGES`
    images (a linear layer's multiply-adds are its weights; a convolution's,
    its weights at each of its output positions) and one
    ``d x d`` product over the fitting images per position, at
    :data:`FIT_RATE` multiply-adds a second, plus reading the training split.
    Conservative: a 3 x 1024 MLP measured 1.7 CPU s (``scripts/inside_speed.py``).
    """
    modules = sequence(model)
    param = next(iter(model.parameters()))
    macs = 0
    with torch.inference_mode():
        h = torch.zeros(1, 1, 28, 28, device=param.device, dtype=param.dtype)
        for m in modules:  # one image, module by module: each convolution's output positions
            h = m(h)
            if isinstance(m, nn.Linear | nn.Conv2d):
                macs += m.weight.numel() * (h.shape[2] * h.shape[3] if h.ndim == 4 else 1)
    forward = float(macs) * (FIT_IMAGES + TEST_IMAGES)
    widths = [784]
    for pos in weight_positions(modules)[:-1]:
        m = modules[pos]
        widths.append(m.out_channels * POOL * POOL if isinstance(m, nn.Conv2d) else int(m.weight.shape[0]))
    products = float(sum(d * d for d in widths)) * FIT_IMAGES
    return LOAD_SECONDS + (forward + products) / FIT_RATE


def run_fit_seconds(run_id: str, runs_dir: PathLike | None = None) -> float:
    """:func:`fit_seconds` for a saved run, from its configuration (no weights read)."""
    from .models import build_model

    return fit_seconds(build_model(load_run(run_id, runs_dir).config).eval())


def run_probes(
    run_id: str,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    model: nn.Module | None = None,
) -> Probes:
    """The run's probes: read from ``probes.npz`` beside it, or fitted now (and saved) when absent or stale.

    ``model``: the run's model when the caller has it loaded already (read
    only). Raises RunNotFound / CorruptRun when the run cannot be read and
    DatasetUnavailable when its dataset is not on disk (probes need its
    training and test images). A cache that cannot be written (a read-only
    folder) costs a refit next time, nothing more.
    """
    info = load_run(run_id, runs_dir)
    if not info.has_weights:
        raise CorruptRun(f"Run {info.id} has no trained weights (weights.pt), so no layer can be read out.")
    stamp = _stamp(info.path)
    found = load(info.path / FILE, stamp)
    if found is not None:
        return found
    fit_x, fit_y = load_split(info.config.dataset, train=True, root=data_root, download=False).tensors()
    test_x, test_y = load_split(info.config.dataset, train=False, root=data_root, download=False).tensors()
    use = load_model(run_id, runs_dir)[0] if model is None else model
    n, m = FIT_IMAGES, TEST_IMAGES
    probes = fit_probes(use, fit_x[:n], fit_y[:n], test_x[:m], test_y[:m])
    with contextlib.suppress(MnistLabError):  # a cache that cannot be written: fitted again next time
        save(probes, info.path / FILE, stamp)
    return probes


def readouts_or_note(
    run_id: str, runs_dir: PathLike | None = None, data_root: PathLike | None = None
) -> tuple[Probes | None, str | None]:
    """:func:`run_probes`, or None and why not when the dataset is not on disk (for the CLI)."""
    try:
        return run_probes(run_id, runs_dir, data_root), None
    except DatasetUnavailable as exc:
        return None, f"No readouts per layer: {exc}"
