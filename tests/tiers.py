"""Test tiers: a fast local loop, everything in CI.

``python -m pytest`` on a developer machine runs the fast tier: fuzz tests with a reduced
number of examples and no test marked ``slow``, ``integration`` (real Phoenix/MLflow
servers, other processes talking over loopback) or ``browser`` (headless Chromium); the
last two are kinds of slow tests.  With ``CI`` set (``CI=true``, as every CI service sets
it) the same command runs everything with the full fuzz budget, and a server or browser
that cannot start fails the test instead of skipping it (`unavailable`).  Locally,
``--run-slow`` (or ``LC_OBSERVE_SLOW=1``) adds the slow tests and
``LC_OBSERVE_FUZZ_CASES=N`` sets the big fuzz test's budget, in either tier.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


#: The CI tier is selected by the CI environment variable, not by another command.
IN_CI = _truthy(os.environ.get("CI"))
RUN_SLOW = IN_CI or _truthy(os.environ.get("LC_OBSERVE_SLOW"))
#: Markers of the slow tier: ``slow`` itself and the kinds of slow test.
SLOW_MARKERS = ("slow", "integration", "browser")


def unavailable(reason: str) -> NoReturn:
    """A server, browser or package a test needs is missing: fail in CI (which must
    provide it: .ci/run, the ``[dev]`` extra), skip elsewhere.  Callable in a test, a
    fixture or at module level (there it skips or fails the whole module)."""
    if IN_CI:
        pytest.fail(f"unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need(module: str) -> object:
    """``import module``, or `unavailable` (a failure in CI, a skip elsewhere)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"needs {module} (pip install -e '.[dev]'): {exc}")


def examples(ci: int, local: int | None = None) -> int:
    """Hypothesis examples of a property test: ``ci`` in CI, fewer locally."""
    if IN_CI:
        return ci
    return local if local is not None else max(10, ci // 10)


#: Cases of the big fuzz test of the whole handler (tests/test_reliability.py).
FUZZ_CASES = int(os.environ.get("LC_OBSERVE_FUZZ_CASES") or (10_000 if IN_CI else 300))
