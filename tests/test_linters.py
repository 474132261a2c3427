"""The code standards, run as tests so the one test command checks them too:
``mypy --strict`` and ``ruff`` over the package, the tests and the examples."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_mypy_strict() -> None:
    result = _run(sys.executable, "-m", "mypy")  # files and --strict come from pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check() -> None:
    if shutil.which("ruff") is None:
        pytest.fail("ruff is not installed (pip install -e '.[test]')")
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
