"""Where everything lives: the one repository root, and every project path derived from it.

kdlib runs from a checkout (``pip install -e .`` or ``python -m kdlib`` in the repository); an installed
copy without the checkout's files falls back to the working folder where a path names the project
(``project_root``).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO", "GRID_PATH", "PAPER_TABLES", "NOTEBOOKS", "TEST_FIXTURES", "project_root", "default_results_root"]

REPO = Path(__file__).resolve().parents[2]  # kdlib/base/paths.py -> the repository
GRID_PATH = REPO / "grid.yaml"
PAPER_TABLES = REPO / "book" / "paper_tables.yaml"  # the paper's own numbers, typed in once
NOTEBOOKS = REPO / "notebooks"
TEST_FIXTURES = REPO / "tests" / "fixtures" / "data"


def project_root() -> Path:
    """The checkout kdlib runs from (it holds grid.yaml), else the working folder (an installed kdlib)."""
    return REPO if GRID_PATH.is_file() else Path.cwd()


def default_results_root() -> Path | None:
    """``$KDLIB_RESULTS`` (``none`` or empty: no committed records), else the repository's ``results/``."""
    env = os.environ.get("KDLIB_RESULTS")
    if env is not None:
        return None if env.strip().lower() in ("", "none", "off", "0") else Path(env)
    return REPO / "results"
