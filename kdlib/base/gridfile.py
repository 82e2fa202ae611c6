"""grid.yaml read as plain YAML, without planning or torch: the settings of one profile, and the names a
command line may give (profiles, experiments) checked against it.

The validated grid (every key, type and bound) is :func:`kdlib.runs.plan.load_grid`, which reads the file
through :func:`read_grid` too: the one reader of grid.yaml.
"""
from __future__ import annotations

from pathlib import Path

from .cli import CliError
from .hints import did_you_mean
from .paths import GRID_PATH

__all__ = ["read_grid", "profile_settings", "reused_profile", "check_profile", "check_experiments"]


def read_grid(path: str | Path | None = None) -> object:
    """The YAML document of ``path`` (default: the project's grid.yaml), unvalidated; a missing, unreadable or
    malformed file is an error that names it and the fix."""
    import yaml

    path = Path(path or GRID_PATH)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"grid file {path} not found; pass --grid PATH") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the grid file {path} ({err}); pass --grid PATH to a readable YAML file") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None


def profile_settings(profile: str) -> dict:
    """``profile``'s section of the project's grid.yaml read as plain YAML ({} when absent or unreadable): the
    settings the run store and the records read (``reuse``, ``record_embeddings``) without planning the grid."""
    try:
        grid = read_grid() or {}
        prof = (grid.get("profiles") or {}).get(profile) or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return prof if isinstance(prof, dict) else {}


def reused_profile(profile: str) -> str | None:
    """The ``reuse:`` of ``profile`` in the project's grid.yaml (None when absent or unreadable)."""
    return profile_settings(profile).get("reuse")


def _names(grid: dict | None, section: str) -> list[str]:
    if grid is None:
        try:
            grid = read_grid()
        except (OSError, ValueError) as err:
            raise CliError(str(err)) from None
    return sorted((grid if isinstance(grid, dict) else {}).get(section) or {})


def check_profile(profile: str, grid: dict | None = None) -> str:
    """``profile`` when grid.yaml (or ``grid``) has it; otherwise a :class:`CliError` naming the nearest."""
    profiles = _names(grid, "profiles")
    if profile not in profiles:
        raise CliError(f"unknown profile {profile!r}{did_you_mean(profile, profiles, 0.5)} Profiles in grid.yaml: "
                       f"{', '.join(profiles)}")
    return profile


def check_experiments(names: list[str] | None, grid: dict | None = None) -> list[str] | None:
    """``names`` when every one is an experiment of grid.yaml (or ``grid``); otherwise a :class:`CliError`."""
    known = _names(grid, "experiments")
    for name in names or []:
        if name not in known:
            raise CliError(f"unknown experiment {name!r}{did_you_mean(name, known, 0.5)} Experiments in grid.yaml: "
                           f"{', '.join(known)}")
    return names
