"""``benchmarks/overhead.py --quick`` in the slow tier, and its regression check.

The benchmark runs as a subprocess; its tables go to the CI log whatever pytest's capture
(``capsys.disabled()``).  It must finish, and deliver what it measured (every ObsHandler
wrote as many records, the LangSmith stand-in received as many runs from the mirror as
from LangChainTracer): a failure otherwise.  Its ratios (added cost, flush included, of a
configuration over its reference: not times) are compared with the reference ratios
committed in ``benchmarks/README.md`` (the JSON block after ``<!-- reference-ratios -->``);
a ratio well above its reference prints a WARNING banner and raises a warning, without
failing the build: the CI machine may be noisy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "benchmarks" / "README.md"
#: a measured ratio above reference * TOLERANCE + SLACK warns
TOLERANCE = 1.5
SLACK = 0.05
_BLOCK = re.compile(r"<!-- reference-ratios -->\s*```json\s*(\{.*?\})\s*```", re.DOTALL)


def reference_ratios(text: str) -> dict[str, dict[str, float]]:
    """The reference block of the README: mode -> target name -> ratio."""
    match = _BLOCK.search(text)
    if match is None:
        raise ValueError(
            "benchmarks/README.md has no reference block: add <!-- reference-ratios --> "
            "followed by a ```json block of mode -> target -> ratio"
        )
    return json.loads(match.group(1))["ratios"]


def measured_ratios(figures: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Mode -> target name -> ratio, from ``overhead.py --json``."""
    return {
        mode: {name: target["ratio"] for name, target in data["targets"].items()}
        for mode, data in figures["modes"].items()
    }


def regressions(
    measured: dict[str, dict[str, float]], reference: dict[str, dict[str, float]]
) -> list[str]:
    """One line per ratio above its reference * TOLERANCE + SLACK, or not measured."""
    found = []
    for mode, targets in reference.items():
        for name, ref in targets.items():
            value = measured.get(mode, {}).get(name)
            if value is None:
                found.append(f"{mode}: {name}: not measured (reference {ref:.2f})")
            elif value > ref * TOLERANCE + SLACK:
                found.append(f"{mode}: {name}: {value:.2f} (reference {ref:.2f})")
    return found


def test_regressions_flags_only_ratios_well_above_their_reference() -> None:
    reference = {"sync": {"a / b": 0.4, "c / d": 1.0}, "async": {"a / b": 0.4}}
    measured = {"sync": {"a / b": 0.6, "c / d": 1.6}, "async": {}}
    assert regressions(measured, reference) == [
        "sync: c / d: 1.60 (reference 1.00)",
        "async: a / b: not measured (reference 0.40)",
    ]


def test_readme_reference_block_parses() -> None:
    reference = reference_ratios(README.read_text())
    assert set(reference) == {"sync", "async"}
    for targets in reference.values():
        assert targets and all(isinstance(ratio, float) for ratio in targets.values())


@pytest.mark.slow
def test_overhead_quick_runs_and_ratios_stay_near_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "overhead.json"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "benchmarks/overhead.py", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    with capsys.disabled():
        print("\n===== benchmarks/overhead.py --quick =====")
        print(proc.stdout)
        if proc.returncode != 0:
            print(proc.stderr[-5000:])
    assert proc.returncode == 0, f"overhead.py --quick failed ({proc.returncode}): see above"
    figures = json.loads(out.read_text())
    assert figures["deliveries_ok"]
    measured, reference = measured_ratios(figures), reference_ratios(README.read_text())
    for mode, targets in reference.items():  # the README names the script's targets
        assert set(targets) == set(measured[mode]), (mode, sorted(measured[mode]))
    found = regressions(measured, reference)
    if found:
        banner = "\n".join(
            [
                "=" * 78,
                "WARNING: overhead ratios above the reference of benchmarks/README.md "
                f"(x{TOLERANCE} + {SLACK}):",
                *(f"  {line}" for line in found),
                "A noisy machine, or a regression: rerun benchmarks/overhead.py to tell.",
                "=" * 78,
            ]
        )
        with capsys.disabled():
            print(banner)
        warnings.warn(banner, stacklevel=1)
