"""Models built from a :class:`RunConfig`: an MLP of any depth, and two CNN styles.

Every model maps normalised images ``(N, 1, 28, 28)`` to logits ``(N, 10)``.
The optional 20x20 centre crop is the model's first layer, so drawings and
test images always go in at 28x28.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .config import RunConfig
from .errors import ConfigError

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class CenterCrop(nn.Module):
    """Keep the central ``size x size`` pixels: ``(N, C, 28, 28) -> (N, C, size, size)``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = (x.shape[-2] - self.size) // 2
        left = (x.shape[-1] - self.size) // 2
        return x[..., top : top + self.size, left : left + self.size]

    def extra_repr(self) -> str:
        return f"size={self.size}"


def mlp_layers(sizes: list[int], activation: str, dropout: float, batch_norm: bool) -> list[nn.Module]:
    """Linear layers over ``sizes`` (micrograd's ``[nin] + nouts``), activations between."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i == len(sizes) - 2:
            break  # the output layer gives logits
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(_ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


def build_mlp(cfg: RunConfig) -> nn.Sequential:
    """``input_size -> hidden[0] -> ... -> 10``; depth is ``len(cfg.hidden)``."""
    crop = [CenterCrop(cfg.crop)] if cfg.crop != 28 else []
    sizes = [cfg.input_size, *cfg.hidden, 10]
    return nn.Sequential(*crop, nn.Flatten(), *mlp_layers(sizes, cfg.activation, cfg.dropout, cfg.batch_norm))


def build_cnn(cfg: RunConfig) -> nn.Sequential:
    """Conv stages then dense layers.

    ``lenet``: 5x5 valid convolutions, tanh, 2x2 average pooling (LeCun 1998,
    as the blog used: 44,426 parameters with channels (6, 16) and dense (120, 84)).
    ``modern``: 3x3 same convolutions, batch norm, ReLU, 2x2 max pooling.
    """
    layers: list[nn.Module] = [CenterCrop(cfg.crop)] if cfg.crop != 28 else []
    side, channels = cfg.crop, 1
    lenet = cfg.cnn_style == "lenet"
    for out in cfg.cnn_channels:
        if lenet:
            layers += [nn.Conv2d(channels, out, 5), nn.Tanh(), nn.AvgPool2d(2)]
            side = (side - 4) // 2
        else:
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
            side //= 2
        channels = out
        if side < 1:
            msg = f"{len(cfg.cnn_channels)} conv stages shrink a {cfg.crop}px image to nothing"
            raise ConfigError("cnn_channels", msg)
    sizes = [channels * side * side, *cfg.hidden, 10]
    activation = "tanh" if lenet else "relu"
    return nn.Sequential(*layers, nn.Flatten(), *mlp_layers(sizes, activation, cfg.dropout, False))


def build_model(cfg: RunConfig, seed: int | None = None) -> nn.Sequential:
    """A fresh model; the same config and seed always give the same initial weights.

    A CNN's weights are laid out channels-last, so its convolutions, batch
    norms and pools run on oneDNN's NHWC kernels (the images themselves have
    one channel, for which both layouts are the same bytes). Measured on 2
    CPU cores at the training batch size: the quick default's step 49 -> 33 ms,
    LeNet-5's 6.6 -> 5.0 ms, CNN 32-64's 46 -> 36 ms; 1000 test images 0.43 ->
    0.30 s. Values are unchanged: ``Flatten`` reads in (C, H, W) order either way.
    A speed trick, so only with the fast path on (:func:`mnist_core.fast.enabled`).
    """
    from .fast import enabled  # here, not at the top: the fast path's modules import this one

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed if seed is None else seed)
        if cfg.model == "cnn":
            cnn = build_cnn(cfg)
            return cnn.to(memory_format=torch.channels_last) if enabled() else cnn
        return build_mlp(cfg)


def for_training(model: nn.Module) -> nn.Module:
    """What the training step runs for ``model``: the same modules and parameters, maybe in a faster order.

    With the fast path on (:func:`mnist_core.fast.enabled`), a ReLU followed
    by a max pool (a modern CNN's stages) is called after the pool instead:
    max-pooling commutes with ReLU, so the logits and every gradient are the
    same, but the ReLU and its backward touch a quarter of the values (the
    quick default's step 22.7 -> 20.3 ms, one thread, CPU time, paired turns).
    The result shares ``model``'s module objects, so training it trains
    ``model``, which stays as built: its state, its hooks (per-layer statistics
    and the Inside view hook the ReLU of ``model`` and see full-size outputs)
    and what is saved are unchanged. Anything else is returned as it is.
    """
    from .fast import enabled  # here, not at the top: the fast path's modules import this one

    if not enabled() or not isinstance(model, nn.Sequential):
        return model
    layers, out = list(model), []
    while layers:
        layer = layers.pop(0)
        if isinstance(layer, nn.ReLU) and layers and isinstance(layers[0], nn.MaxPool2d):
            out += [layers.pop(0), layer]
        else:
            out.append(layer)
    return model if out == list(model) else nn.Sequential(*out)


ONEDNN_MIN_BATCH = 8  # from 8 images a batch the blocked layout is faster; below, slower (see for_inference)
_LAYOUT_AGNOSTIC = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.ReLU, nn.Tanh)  # run on oneDNN tensors too


class OneDNNLayout(nn.Module):
    """A batch of at least ``min_batch`` images goes on in oneDNN's blocked layout (``Tensor.to_mkldnn``).

    Convolutions, pools and activations then run on oneDNN's own tensors,
    with no reorder around each of them; smaller batches stay as they are.
    """

    def __init__(self, min_batch: int = ONEDNN_MIN_BATCH) -> None:
        super().__init__()
        self.min_batch = min_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to_mkldnn() if x.shape[0] >= self.min_batch else x

    def extra_repr(self) -> str:
        return f"min_batch={self.min_batch}"


class DenseLayout(nn.Module):
    """Back from oneDNN's layout to an ordinary (N, C, H, W) tensor, if :class:`OneDNNLayout` left it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to_dense() if x.is_mkldnn else x


def for_inference(model: nn.Module) -> nn.Module:
    """The module that fast inference runs for ``model`` (in eval mode): the same logits, sooner.

    With the fast path on (:func:`mnist_core.fast.enabled`), a CNN is copied
    and, in the copy, each batch norm that follows a convolution is folded
    into it (torch's ``fuse_conv_bn_eval``), a ReLU followed by a max pool
    runs after the pool instead (max-pooling commutes with ReLU, so the ReLU
    touches a quarter of the values, in place) and the weights are laid out
    channels-last. On a CPU with oneDNN, the conv stages of a batch of 8 or
    more images then run on oneDNN's blocked tensors (:class:`OneDNNLayout`
    ... :class:`DenseLayout`). Measured on CNN 32-64's 10,000 test images,
    one thread, CPU seconds: 3.8 as trained (channels-last, batch 1000) ->
    3.1 folded -> 1.1 folded and swapped at batch 128-256
    (``metrics.FAST_EVAL_BATCH``) -> 0.90 in oneDNN's layout; per image at
    batch 256, quick default 49 -> 31 us, LeNet-5 31 -> 19 us; below 8
    images the layout change costs more than it saves (one image: +20 us of
    ~120-230 us). Logits within 3e-7, the same predictions. ``model`` itself
    is never changed. Anything else (an MLP, the fast path off) is returned
    as it is.
    """
    from .fast import enabled  # here, not at the top: the fast path's modules import this one

    if not enabled() or model.training or not isinstance(model, nn.Sequential):
        return model
    if not any(isinstance(m, nn.Conv2d) for m in model):
        return model
    layers, out = list(copy.deepcopy(model)), []
    while layers:
        layer = layers.pop(0)
        following = layers[0] if layers else None
        if isinstance(layer, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
            out.append(fuse_conv_bn_eval(layer, layers.pop(0)))
        elif isinstance(layer, nn.ReLU) and isinstance(following, nn.MaxPool2d):
            out += [layers.pop(0), nn.ReLU(inplace=True)]
        else:
            out.append(layer)
    engine = nn.Sequential(*_in_onednn_layout(out)).to(memory_format=torch.channels_last).eval()
    engine.requires_grad_(False)  # inference only: oneDNN's tensors have no autograd
    for module in engine.modules():  # the copies carry the layers' hooks: a probe of another thread
        module._forward_hooks.clear()  # (the Inside view's) must not see this pass nor oneDNN's tensors
        module._forward_pre_hooks.clear()
    engine._forward_hooks.update(model._forward_hooks)  # a corrected version's memory (mnist_core.memory)
    return engine


def _in_onednn_layout(layers: list[nn.Module]) -> list[nn.Module]:
    """``layers`` with the conv stages between :class:`OneDNNLayout` and :class:`DenseLayout`.

    Only on a CPU with oneDNN, and only when every layer from the first
    convolution to the flatten runs on oneDNN's tensors; else unchanged.
    """
    first = next(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d))
    end = first
    while end < len(layers) and isinstance(layers[end], _LAYOUT_AGNOSTIC):
        end += 1
    on_cpu = all(p.device.type == "cpu" for p in layers[first].parameters())
    flatten_next = end < len(layers) and isinstance(layers[end], nn.Flatten)
    if not (on_cpu and flatten_next and torch.backends.mkldnn.is_available()):
        return layers
    return [*layers[:first], OneDNNLayout(), *layers[first:end], DenseLayout(), *layers[end:]]
