"""The older name of :mod:`mnist_core.runs.schema`, kept so existing imports work; new code imports that."""

from .runs.schema import *  # noqa: F403
from .runs.schema import __all__  # noqa: F401
