"""kdlib.book.compute: wall time spent (a lockstep group counted once) and the estimate for missing runs."""
import pytest

from kdlib.book.compute import estimate_missing, spent


class FakeRun:
    def __init__(self, rid, kind, model, seconds, device="GPU", teacher=None, seed=0):
        self.id = rid
        self.config = {"kind": kind, "model": {"name": model}, "seed": seed, "augment": "none", "alpha": 0.5,
                       "temperature": 20.0, "teacher": teacher}
        self._prov = {"device_name": device, "wall_seconds": {"total": seconds, "train": seconds - 1}}

    def provenance(self):
        return self._prov


class FakeStore:
    def __init__(self, runs):
        self._runs = runs

    def runs(self, kind=None):
        return self._runs


def test_a_lockstep_group_counts_once_and_the_estimate_uses_like_tasks():
    store = FakeStore([FakeRun("t0", "teacher", "resnet18", 40.0), FakeRun("t1", "teacher", "resnet18", 60.0),
                       FakeRun("s0", "student", "lenet", 30.0, teacher="t0"),
                       FakeRun("s1", "student", "alexnet", 30.0, teacher="t0"),  # same group as s0
                       FakeRun("s2", "student", "lenet", 20.0, teacher="t1")])
    cost = spent(store)
    assert cost["by_device"]["GPU"]["teacher"] == {"seconds": 100.0, "tasks": 2}
    assert cost["by_device"]["GPU"]["students"] == {"seconds": 50.0, "tasks": 2}
    plan = [{"task": "teacher-x", "seed": 2, "kind": "teacher", "model": "resnet18", "fillable": True},
            {"task": "students-x", "seed": 2, "kind": "student", "model": "lenet", "fillable": True},
            {"task": "students-x", "seed": 2, "kind": "student", "model": "alexnet", "fillable": True},
            {"task": "students-y", "seed": 0, "kind": "student", "model": "lenet", "fillable": False}]
    est = estimate_missing(plan, cost, "GPU")
    # one teacher at the mean teacher (50 s) + one LeNet+AlexNet group at the mean such group (30 s); the
    # unfillable run costs nothing
    assert est["tasks"] == 2 and est["seconds"] == pytest.approx(80.0) and est["unknown"] == 0
    assert estimate_missing(plan, cost, "another GPU")["unknown"] == 2
