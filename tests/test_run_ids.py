"""The run id of every planned config of every profile is the one committed in tests/fixtures/run_ids.json.

A run id is the hash of its fully resolved config: the committed records in results/ are found by it. A
refactor that changed a default, the order a config is built in or the canonical JSON would silently
orphan every record; this test compares against the list written before kdlib moved into wings (issue 21).
A deliberate change to grid.yaml regenerates the list: ``python tests/test_run_ids.py --write``.
"""
import json
import sys
from pathlib import Path

from kdlib.runs.plan import load_grid, plan, task_configs
from kdlib.runs.store import run_id

FIXTURE = Path(__file__).parent / "fixtures" / "run_ids.json"


def planned_ids() -> dict[str, list[str]]:
    grid = load_grid()
    out = {}
    for profile in sorted(grid["profiles"]):
        out[profile] = sorted({run_id(c) for task in plan(profile, grid) for c in task_configs(task, grid)})
    return out


def test_every_planned_run_id_is_unchanged():
    expected = json.loads(FIXTURE.read_text())
    got = planned_ids()
    assert sorted(got) == sorted(expected), "profiles added or removed: regenerate with --write"
    for profile, ids in expected.items():
        lost = sorted(set(ids) - set(got[profile]))
        new = sorted(set(got[profile]) - set(ids))
        assert not lost and not new, f"{profile}: {len(lost)} ids no longer planned {lost[:3]}, {len(new)} new {new[:3]}"


if __name__ == "__main__" and "--write" in sys.argv:
    FIXTURE.write_text(json.dumps(planned_ids(), indent=1) + "\n")
