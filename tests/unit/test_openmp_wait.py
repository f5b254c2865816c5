"""``import mnist_core`` sets how long OpenMP threads spin, before torch loads, and keeps what the user set.

A spin of libgomp's default 300,000 iterations collapsed training 40-75x
when another busy thread or process shared the 2 cores (the app trains and
predicts at once); ``mnist_core`` sets 1,000. It is read once, when OpenMP
loads, hence a fresh interpreter for each case.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SHOW = "import os, mnist_core, torch; print(os.environ.get('GOMP_SPINCOUNT'))"


def spin_after_import(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    done = subprocess.run([sys.executable, "-c", SHOW], env=clean | env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("env", "expected"), [({}, "1000"), ({"GOMP_SPINCOUNT": "5000"}, "5000")],
                         ids=["default", "user-set"])
def test_import_sets_a_short_spin_unless_the_user_chose_one(env: dict[str, str], expected: str) -> None:
    assert spin_after_import(**env) == expected
