"""Typed errors with messages a user can act on.

Pages and the CLI catch :class:`MnistLabError` and show its message; anything
else is a bug.
"""

from __future__ import annotations


class MnistLabError(Exception):
    """Base class of every error the core raises on purpose."""


class ConfigError(MnistLabError, ValueError):
    """A run configuration is invalid; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.reason = field, message
        super().__init__(f"{field}: {message}")


class DatasetUnavailable(MnistLabError):
    """The dataset is not on disk and could not be downloaded."""


class RunNotFound(MnistLabError):
    """No run with that id in the checkpoints folder."""


class CorruptRun(MnistLabError):
    """A run folder exists but its files are missing, truncated or foreign."""


class ImageError(MnistLabError, ValueError):
    """An image cannot be turned into a digit for the model.

    ``str()`` says what is wrong and what to do for a drawing and a photo
    alike (the command line's message). Where the advice differs, ``drawing``
    and ``photo`` say it for one of them: :meth:`for_source`.
    """

    def __init__(self, message: str, *, drawing: str | None = None, photo: str | None = None) -> None:
        super().__init__(message)
        self.drawing, self.photo = drawing, photo

    def for_source(self, source: str) -> str:
        """The message for a ``"drawing"`` (the canvas) or a ``"photo"`` (an upload)."""
        own = {"drawing": self.drawing, "photo": self.photo}.get(source)
        return own or str(self)


class EmptyImageError(ImageError):
    """The drawing or upload holds no stroke (blank, erased, uniform)."""


class SeveralDigitsError(ImageError):
    """The image holds several digits side by side; the model reads one at a time."""


class InvalidImageError(ImageError):
    """The upload is not a readable image (garbage bytes, 0 bytes, too large)."""


class RunFolderMissing(RunNotFound):
    """A run's folder was deleted or moved while this process was writing it."""


class StorageError(MnistLabError, OSError):
    """The checkpoints folder could not be written (full disk, permissions); nothing half-made is left.

    An :class:`OSError` too (with ``errno``), like ``fsutil.WriteError``; its
    message says what happened and what to do.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        self.message = message
        super().__init__(errno, message)

    def __str__(self) -> str:
        return self.message


class NotADigitError(EmptyImageError):
    """There is ink, but its shape is not a digit's: a tap, a blob, a scribble, a dash (no digit to read)."""


class ProbeDeferred(MnistLabError):
    """A configuration is not timed now: a run trains here, and the probe would slow it (and its time)."""
