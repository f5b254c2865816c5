"""What a training run saves to resume: the one type the training loop and the storage share.

It lives with the storage, so the training loop (``mnist_core.train``)
depends on the storage and never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class TrainState:
    """Everything needed to resume: saved after each epoch and when stopped."""

    epoch: int  # completed epochs
    step_in_epoch: int  # steps done in the current, unfinished epoch (0 after an epoch)
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    elapsed_s: float
    history: list[dict[str, Any]] = field(default_factory=list)
