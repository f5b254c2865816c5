"""Helpers shared by the test folders (unit/, app/, e2e/, reliability/): import, do not copy.

``tests/`` is importable as a package from the repository root (pyproject's
``pythonpath = ["."]``), so test files write ``from tests.support.apptest import
open_app``. Nothing here is collected as a test.
"""
