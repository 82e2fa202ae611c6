"""Compact run records: export -> import round trip, refusals of tampered or mismatched records, the
run store reading records as finished runs, and the committed results/ within budget."""
import hashlib
import io
import json
import shutil
import tarfile

import numpy as np
import pytest

import kdlib.data.memo as MEMO
import kdlib.runs.pipeline as P
from kdlib.runs.plan import load_grid, student_groups, teacher_configs
from kdlib.runs.execute import run_grid
from kdlib.runs.compact import BUDGET, EMBED_PER_CLASS, MANIFEST, RecordError, compact_arrays, embedding_subset
from kdlib.runs.export import export_store
from kdlib.runs.admit import import_records
from kdlib.runs.sidecar import read_dataset_sidecar
from kdlib.runs.health import run_health
from kdlib.book.claims import claims
from kdlib.book.rows import collect, load_predictions
from kdlib.runs.store import COMPACT_PREDICTIONS, COMPACT_TRAIN_LOGITS, TRAIN_LOGITS, RunStore, run_id
from kdlib.base.paths import REPO

from conftest import CIFAR_JPEG, CIFAR10H, FASHION

HAVE_CIFAR = (CIFAR_JPEG / "test.tar.gz").is_file() and (CIFAR10H / "cifar10h-probs.npy").is_file()
HAVE_FASHION = (FASHION / "train-images-idx3-ubyte.gz").is_file()
PROFILE = "cifar-smoke" if HAVE_CIFAR else "smoke"
needs_data = pytest.mark.skipif(not (HAVE_CIFAR or HAVE_FASHION), reason="neither CIFAR-10 nor Fashion-MNIST here")


@pytest.fixture(scope="module")
def full_store(tmp_path_factory):
    """A full run store of the CIFAR-smoke profile (E1 + E2, one seed), or of smoke without CIFAR-10."""
    root = tmp_path_factory.mktemp("store")
    mp = pytest.MonkeyPatch()
    if HAVE_CIFAR:
        mp.setenv("KDLIB_DATA", str(CIFAR_JPEG.parent))
    MEMO.clear_data_memo()
    run_grid(PROFILE, runs=root, device="cpu", progress=False, only=["E1", "E2"], seeds=[0], results=None)
    yield RunStore(root, PROFILE, results=None)
    MEMO.clear_data_memo()
    mp.undo()


@pytest.fixture
def exported(full_store, tmp_path):
    dest = tmp_path / "results"
    report = export_store(PROFILE, runs=full_store.root, dest=dest)
    assert report and all(r["status"] == "added" for r in report), report
    return dest


def _record(dest, kind="teacher"):
    return next((dest / PROFILE / kind).iterdir())


# ---------------------------------------------------------------------------- pure pieces
def test_embedding_subset_is_stratified_fixed_and_nested():
    labels = np.repeat(np.arange(10), 57)
    np.random.default_rng(1).shuffle(labels)
    big = embedding_subset(labels, 20)
    small = embedding_subset(labels, 8)
    assert np.bincount(labels[big], minlength=10).tolist() == [20] * 10
    assert np.bincount(labels[small], minlength=10).tolist() == [8] * 10
    assert set(small) <= set(big)  # the explorer's images are among the teachers' embeddings
    assert np.array_equal(big, embedding_subset(labels, 20))  # fixed
    assert np.array_equal(big, np.sort(big))
    assert len(embedding_subset(labels[:15], 100)) == 15  # fewer images than asked: all of them


def test_compact_arrays_are_half_precision_and_keep_what_chapters_need(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    labels = np.repeat(np.arange(10), 30)
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    full = {"test_probs": probs, "test_logits": logits, "test_labels": labels, "test_indices": np.arange(n) + 5,
            "test_embeddings": rng.normal(size=(n, 64)).astype(np.float16), "test_human": probs}
    t = compact_arrays(full, "teacher", per_class=7)
    s = compact_arrays(full, "student")
    # logits are kept and the probabilities, their softmax, are not stored twice; a run without logits keeps probs
    assert t["test_logits"].dtype == np.float16 and "test_probs" not in t and "test_probs" not in s
    kept = compact_arrays({k: v for k, v in full.items() if k != "test_logits"}, "student")
    assert kept["test_probs"].dtype == np.float16 and "test_logits" not in kept
    assert "test_human" not in t and "test_embeddings" not in s  # humans live in the sidecar; students no features
    assert t["test_embeddings"].shape == (70, 64)
    rows = t["test_embedding_index"]
    assert np.array_equal(t["test_embeddings"], full["test_embeddings"][rows])
    assert np.bincount(labels[rows]).tolist() == [7] * 10
    assert "test_embeddings" not in compact_arrays(full, "teacher", embeddings=False)  # record_embeddings: false
    # read back as a record: the probabilities are the softmax of the float16 logits, within float16 rounding
    from kdlib.runs.compact import _npz_bytes
    from kdlib.runs.store import Run

    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / COMPACT_PREDICTIONS).write_bytes(_npz_bytes(t))
    back = Run(folder, {"kind": "teacher"}, record=True).read_predictions()
    assert np.abs(back["test_probs"] - probs).max() < 2e-3
    assert np.allclose(back["test_probs"].sum(1), 1.0, atol=1e-6)


@pytest.mark.parametrize("acc,n,loss,failed", [
    (0.10, 2000, [2.3, 1.5], True),     # exactly chance
    (0.115, 2000, [2.3, 1.5], True),    # within 3 s.e. (0.0067 each) of 0.1
    (0.13, 2000, [2.3, 1.5], False),    # 4.5 s.e. above chance
    (0.80, 2000, [2.3, 2.29], True),    # flat loss
    (0.80, 2000, [2.3, float("nan")], True),  # non-finite loss
    (0.80, 2000, [2.3, 0.5], False),
])
def test_failed_run_rule(acc, n, loss, failed):
    h = run_health({"test": {"accuracy": acc, "n": n}}, [{"loss": v} for v in loss])
    assert h["failed"] is failed
    assert bool(h["reasons"]) is failed


# ---------------------------------------------------------------------------- round trip
@needs_data
def test_export_import_round_trip_rebuilds_the_same_tables(full_store, exported, tmp_path):
    again = tmp_path / "again"
    report = import_records(exported, again)  # records of records: the importer's own gate, once more
    assert {r["status"] for r in report} == {"added"}
    for kind in ("teacher", "student"):
        for folder in (again / PROFILE / kind).iterdir():
            size = sum(p.stat().st_size for p in folder.iterdir())
            assert size <= BUDGET[kind]
            assert not (folder / "checkpoint.pt").exists() and not (folder / TRAIN_LOGITS).exists()
            assert (folder / COMPACT_TRAIN_LOGITS).is_file() == (kind == "teacher")  # teachers' logits, as float16
    from_records = RunStore(tmp_path / "empty-runs", PROFILE, results=again)
    grid = load_grid()
    a = collect(full_store, grid, include_failed=True)
    b = collect(from_records, grid, include_failed=True)
    key = lambda r: r["id"]  # noqa: E731
    strip = lambda rows: [{k: v for k, v in r.items() if k != "record"} for r in sorted(rows, key=key)]  # noqa: E731
    assert strip(a) == strip(b) and all(r["record"] for r in b)
    main = a[0]["dataset"]
    ca, cb = claims(a, main), claims(b, main)
    assert [(x["comparison"], x["verdict"], x["n"]) for x in ca] == [(x["comparison"], x["verdict"], x["n"]) for x in cb]
    # predictions: probabilities to float16 precision, teachers' embeddings for a stratified subset
    t = a[0]["id"] if a[0]["kind"] == "teacher" else next(r["id"] for r in a if r["kind"] == "teacher")
    pf, pr = load_predictions(full_store, t), load_predictions(from_records, t)
    assert np.abs(pf["test_probs"] - pr["test_probs"]).max() < 2e-3
    assert np.array_equal(pf["test_labels"], pr["test_labels"])
    rows = pr["test_embedding_index"]
    assert np.allclose(pf["test_embeddings"][rows], pr["test_embeddings"], atol=1e-2, rtol=1e-2)
    per_class = np.bincount(pr["test_labels"][rows])
    assert per_class.max() <= EMBED_PER_CLASS and per_class.min() >= 1
    # importing the same records again changes nothing
    assert {r["status"] for r in import_records(exported, again)} == {"present"}


@needs_data
def test_records_are_cache_hits_for_the_grid(exported, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(P, "fit", lambda *a, **k: calls.append(1))
    runs = tmp_path / "runs"
    run_grid(PROFILE, runs=runs, device="cpu", progress=False, only=["E1"], seeds=[0], results=exported)
    assert calls == [] and not (runs / PROFILE / "teacher").exists()  # nothing trained, nothing written


def _group(grid, teacher_regime="none", regime="none", students=("lenet", "alexnet")):
    """(teacher config, student configs) of seed 0 of the E2 (clean input) or E4 (augmented input) kind."""
    return student_groups(grid, PROFILE, "main", "resnet18", teacher_regime, list(students), regime, 20.0, 0.5,
                          seeds=[0])[0]


@needs_data
def test_teacher_records_carry_their_training_logits_as_float16(full_store, exported):
    """Each teacher's record holds its run's train_logits.npz rounded to float16 (nothing else), listed in the
    manifest; students' records hold none; the records stay within budget."""
    teachers = full_store.runs("teacher")
    assert teachers
    for run in teachers:
        rec = exported / PROFILE / "teacher" / run.id
        with np.load(rec / COMPACT_TRAIN_LOGITS, allow_pickle=False) as z:
            assert z.files == ["logits"]
            half = z["logits"]
        full = run.read_arrays(TRAIN_LOGITS)["logits"]
        assert full.dtype == np.float32 and half.dtype == np.float16
        assert np.array_equal(half, full.astype(np.float16))  # numpy's round-to-nearest-even, nothing more
        # the rounding error float16 allows (2^-11 relative, 2^-25 absolute near 0), an independent bound
        assert np.all(np.abs(half.astype(np.float32) - full) <= np.maximum(np.abs(full) * 2.0**-11, 2.0**-24))
        assert len(half) == run.provenance()["datasets"][0]["n"]
        manifest = json.loads((rec / MANIFEST).read_text())
        assert manifest["files"][COMPACT_TRAIN_LOGITS] == hashlib.sha256((rec / COMPACT_TRAIN_LOGITS).read_bytes()
                                                                          ).hexdigest()
        assert sum(p.stat().st_size for p in rec.iterdir()) <= BUDGET["teacher"]
    assert not any((f / COMPACT_TRAIN_LOGITS).exists() for f in (exported / PROFILE / "student").iterdir())


@needs_data
def test_clean_students_train_from_a_record_teacher_and_are_importable(full_store, exported, tmp_path):
    """A record-only teacher (no checkpoint, no float32 logits) teaches students on clean input from its float16
    logits: the same runs (ids) as the full store's, metrics within float16's reach of them, provenance saying
    so; the importer takes them under that teacher and refuses them under another realisation of it."""
    grid = load_grid()
    shutil.rmtree(exported / PROFILE / "student")
    store = RunStore(tmp_path / "runs", PROFILE, results=exported)
    tcfg, group = _group(grid)
    teacher = store.run(tcfg)
    assert teacher.record and not teacher.has_weights and not teacher.path(TRAIN_LOGITS).exists()
    runs = P.run_students(group, store, device="cpu", progress=False)
    assert not (tmp_path / "runs" / PROFILE / "teacher").exists()  # the teacher was read, never retrained
    for run, cfg in zip(runs, group):
        live = full_store.run(cfg)  # the same config, distilled from the live teacher's float32 logits
        assert run.id == live.id and not run.record and run.done
        logits = run.provenance()["teacher"]["logits"]
        assert logits["from"] == "record" and logits["dtype"] == "float16" and logits["file"] == COMPACT_TRAIN_LOGITS
        assert live.provenance()["teacher"]["logits"] == {"from": "run", "file": TRAIN_LOGITS, "dtype": "float32"}
        a, b = run.read_predictions(), live.read_predictions()
        # measured on cifar-smoke (one epoch, 4 SGD steps, LeNet and AlexNet; teacher logits up to 0.15, rounded
        # by up to 6e-5): max |dp| 2.2e-8 on the test probabilities, 1.9e-8 on the weights, the same predicted
        # classes. The bound, 1e-4, is 4,000x that: float16 moves each teacher logit by at most 2^-11 of itself
        # and the soft targets at T = 20 by less, and 4 steps at lr 0.01 cannot amplify that to 1e-4; a larger
        # gap means the record's logits are not the run's (another teacher, rows in another order). Over long
        # schedules SGD amplifies any rounding-level change: on the quick profile (15 epochs) the loss gap is
        # 3e-5 for two epochs, then grows, and the float32 logits perturbed by the float16 error mirrored (as
        # large, the other way) move the students as far (LeNet 0.7633 / fp16 0.7617 / mirrored 0.7620)
        assert np.abs(a["test_probs"] - b["test_probs"]).max() < 1e-4
        assert np.array_equal(a["test_probs"].argmax(1), b["test_probs"].argmax(1))
        ma, mb = run.read_json("metrics.json")["test"], live.read_json("metrics.json")["test"]
        assert ma["accuracy"] == mb["accuracy"] and ma["nll"] == pytest.approx(mb["nll"], abs=1e-4)
    # the importer takes them: the teacher is recorded, the same realisation, with the logits they were taught by
    report = import_records(tmp_path / "runs", exported)
    assert {r["status"] for r in report} == {"added"} and {r["id"] for r in report} == {r.id for r in runs}
    # ... and refuses them under another realisation of the teacher (retrained elsewhere: other metrics)
    other = tmp_path / "other" / PROFILE / "student"
    shutil.copytree(runs[0].folder, other / runs[0].id)
    prov = json.loads((other / runs[0].id / "provenance.json").read_text())
    prov["teacher"]["metrics_sha256"] = "0" * 64
    (other / runs[0].id / "provenance.json").write_text(json.dumps(prov))
    shutil.rmtree(exported / PROFILE / "student" / runs[0].id)
    with pytest.raises(RecordError, match="different realisation of teacher"):
        import_records(tmp_path / "other", exported)
    # ... or under the same teacher's record carrying other logits than those it was taught by
    prov["teacher"]["metrics_sha256"] = run.provenance()["teacher"]["metrics_sha256"]
    prov["teacher"]["logits"]["digest"] = "f" * 64
    (other / runs[0].id / "provenance.json").write_text(json.dumps(prov))
    with pytest.raises(RecordError, match="float16 training-set logits of a record.*carries other logits"):
        import_records(tmp_path / "other", exported)


@needs_data
def test_calibrated_students_train_from_a_record_teacher(full_store, exported, tmp_path):
    """E10's students (teacher logits divided by the temperature fitted on the held-out half of the test set):
    from a record, the temperature is fitted on the record's float16 test logits and divides its float16
    training-set logits; the students land within float16's reach of those of the live teacher."""
    from kdlib.blocks.calibration import fit_temperature

    grid = load_grid()
    tcfg, group = student_groups(grid, PROFILE, "main", "resnet18", "flipcrop", ["lenet"], "none", 20.0, 0.5,
                                 seeds=[0], teacher_calibration="temperature")[0]
    shutil.rmtree(exported / PROFILE / "student")
    store = RunStore(tmp_path / "runs", PROFILE, results=exported)
    assert store.run(tcfg).record
    (run,) = P.run_students(group, store, device="cpu", progress=False)
    (live,) = P.run_students(group, full_store, device="cpu", progress=False)
    preds = store.run(tcfg).read_predictions()  # the record's: float16 logits
    held = preds["test_indices"] % 2 == 0
    prov = run.provenance()
    assert prov["teacher_calibration"]["temperature"] == pytest.approx(
        fit_temperature(preds["test_logits"][held], preds["test_labels"][held]), rel=1e-6)
    assert prov["teacher"]["logits"]["from"] == "record"
    t_live = live.provenance()["teacher_calibration"]["temperature"]
    # measured: 4.8585 from the float16 test logits, 4.8594 from the float32 ones (1.7e-4 relative; max |dp| of the
    # students 2.2e-8); float16 moves each logit by at most 2^-11 = 4.9e-4 of itself, so the fitted scale by about
    # as much: the bound is 1e-3
    assert prov["teacher_calibration"]["temperature"] == pytest.approx(t_live, rel=1e-3)
    a, b = run.read_predictions(), live.read_predictions()
    assert np.abs(a["test_probs"] - b["test_probs"]).max() < 1e-4  # as for the uncalibrated students above


@needs_data
def test_a_recorded_teacher_cannot_teach_augmented_students(exported, tmp_path):
    """Students on augmented input (E4) need the teacher online, i.e. its weights: a record cannot teach them."""
    grid = load_grid()
    shutil.rmtree(exported / PROFILE / "student")
    store = RunStore(tmp_path / "runs", PROFILE, results=exported)
    tcfg, group = _group(grid, "none", "flipcrop", ["lenet"])
    assert store.run(tcfg).record
    with pytest.raises(P.TeacherWeightsMissing, match="without its weights: their input is augmented.*--ignore-results"):
        P.run_students(group, store, device="cpu", progress=False)
    assert not (tmp_path / "runs" / PROFILE / "student").exists()


@needs_data
def test_an_old_teacher_record_without_logits_stays_valid_and_its_students_unfillable(exported, tmp_path):
    """A record exported before records kept the logits: still admitted, still read; its clean students need the
    teacher, and the error says the record carries no logits."""
    grid = load_grid()
    shutil.rmtree(exported / PROFILE / "student")
    tcfg, group = _group(grid)
    rec = exported / PROFILE / "teacher" / run_id(tcfg)
    (rec / COMPACT_TRAIN_LOGITS).unlink()
    manifest = json.loads((rec / MANIFEST).read_text())
    del manifest["files"][COMPACT_TRAIN_LOGITS]
    (rec / MANIFEST).write_text(json.dumps(manifest))
    assert {r["status"] for r in import_records(exported, tmp_path / "copy")} == {"added"}
    assert not (tmp_path / "copy" / PROFILE / "teacher" / rec.name / COMPACT_TRAIN_LOGITS).exists()
    store = RunStore(tmp_path / "runs", PROFILE, results=exported)
    assert store.run(tcfg).done
    with pytest.raises(P.TeacherWeightsMissing, match=f"this record carries none.*{COMPACT_TRAIN_LOGITS}"):
        P.run_students(group, store, device="cpu", progress=False)


@needs_data
@pytest.mark.parametrize("tamper,needle", [
    (lambda z: z[:-7], r"logits of shape \(\d+, 10\), but the teacher trained on \d+ images of 10 classes"),
    (lambda z: z[:, :9], r"logits of shape \(\d+, 9\)"),
    (lambda z: np.where(np.arange(len(z))[:, None] == 3, np.float16("nan"), z), "logits hold NaN or Inf"),
    (lambda z: z.astype(np.float32), "dtype float32; a record keeps them as float16"),
])
def test_a_tampered_logits_file_is_refused(exported, tmp_path, tamper, needle):
    rec = _record(exported)
    with np.load(rec / COMPACT_TRAIN_LOGITS) as z:
        logits = z["logits"]
    np.savez_compressed(rec / COMPACT_TRAIN_LOGITS, logits=tamper(logits))
    with pytest.raises(RecordError, match="train-logits-fp16.npz does not match the checksum"):
        _reimport(exported, tmp_path)
    (rec / MANIFEST).unlink()  # without the manifest, the file's own checks speak
    with pytest.raises(RecordError, match=needle):
        _reimport(exported, tmp_path)


@needs_data
def test_archive_round_trip(full_store, tmp_path):
    archive = tmp_path / "out" / "records.tar.gz"
    export_store(PROFILE, runs=full_store.root, archive=archive)
    assert archive.is_file()
    dest = tmp_path / "results"
    report = import_records(archive, dest)
    assert report and {r["status"] for r in report} == {"added"}
    runs = [r for r in report if r["kind"] != "dataset"]
    assert len(runs) == len(full_store.runs())
    sidecars = [r for r in report if r["kind"] == "dataset"]  # the test split's labels and images travel too
    assert len(sidecars) == 1 and (dest / PROFILE / "datasets").is_dir()


# ---------------------------------------------------------------------------- refusals
def _reimport(src, tmp_path):
    return import_records(src, tmp_path / "fresh", strict=True)


@needs_data
def test_edited_config_is_refused(exported, tmp_path):
    rec = _record(exported)
    cfg = json.loads((rec / "config.json").read_text())
    cfg["seed"] = 99
    (rec / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RecordError, match="config.json does not match the checksum"):
        _reimport(exported, tmp_path)
    (rec / MANIFEST).unlink()  # without a manifest the id itself gives the edit away
    with pytest.raises(RecordError, match="not the hash of its config.json"):
        _reimport(exported, tmp_path)


@needs_data
def test_edited_metrics_are_refused_by_the_manifest(exported, tmp_path):
    rec = _record(exported, "student")
    m = json.loads((rec / "metrics.json").read_text())
    m["test"]["accuracy"] = 0.99
    (rec / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(RecordError, match="does not match the checksum"):
        _reimport(exported, tmp_path)


@needs_data
def test_edited_metrics_without_manifest_disagree_with_predictions(exported, tmp_path):
    rec = _record(exported, "student")
    (rec / MANIFEST).unlink()
    m = json.loads((rec / "metrics.json").read_text())
    m["test"]["accuracy"] = round(m["test"]["accuracy"] + 0.2, 4) % 1
    (rec / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(RecordError, match="predictions give"):
        _reimport(exported, tmp_path)


@needs_data
def test_student_without_its_teacher_is_refused(exported, tmp_path):
    shutil.rmtree(exported / PROFILE / "teacher")
    taught = {f.name for f in (exported / PROFILE / "student").iterdir()
              if json.loads((f / "config.json").read_text())["teacher"]}
    report = import_records(exported, tmp_path / "fresh", strict=False)
    by_id = {r["id"]: r for r in report}
    assert taught and all(by_id[i]["status"] == "refused" and "import the teacher" in by_id[i]["message"]
                          for i in taught)
    assert all(r["status"] == "added" for r in report if r["id"] not in taught)  # alpha = 0 students need none
    assert not any((tmp_path / "fresh" / PROFILE / "student" / i).exists() for i in taught)


@needs_data
def test_a_finished_record_is_never_overwritten(exported, tmp_path):
    dest = tmp_path / "dest"
    import_records(exported, dest)
    rec = _record(exported, "student")
    target = dest / PROFILE / "student" / rec.name
    before = (target / "metrics.json").read_bytes()
    # a different realisation of the same config (same id), with consistent files
    m = json.loads((rec / "metrics.json").read_text())
    m["test"]["nll"] = m["test"]["nll"] + 1.0
    (rec / "metrics.json").write_text(json.dumps(m))
    (rec / MANIFEST).unlink()
    with pytest.raises(RecordError, match="never overwritten"):
        import_records(exported, dest)
    assert (target / "metrics.json").read_bytes() == before


@needs_data
def test_truncated_predictions_are_refused(exported, tmp_path):
    rec = _record(exported, "student")
    data = (rec / COMPACT_PREDICTIONS).read_bytes()
    (rec / COMPACT_PREDICTIONS).write_bytes(data[: len(data) // 2])
    (rec / MANIFEST).unlink()
    with pytest.raises(RecordError, match="not a readable .npz"):
        _reimport(exported, tmp_path)


def test_archive_with_a_path_outside_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("../../escape/config.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(RecordError, match="outside the archive"):
        import_records(archive, tmp_path / "dest")
    assert not (tmp_path.parent / "escape").exists()


def test_archive_with_a_link_is_refused(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("paper/teacher/0123456789ab/config.json")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(RecordError, match="link or a device"):
        import_records(archive, tmp_path / "dest")


def test_not_an_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "records.tar.gz"
    bad.write_bytes(b"not a tar file at all")
    with pytest.raises(RecordError, match="not a readable tar archive"):
        import_records(bad, tmp_path / "dest")


# ---------------------------------------------------------------------------- the committed results
COMMITTED = REPO / "results"


def test_committed_records_are_within_budget_and_pass_the_importer(tmp_path):
    records = [f for kind in ("teacher", "student") for f in COMMITTED.glob(f"*/{kind}/*") if f.is_dir()]
    assert records, "results/ holds no records"
    for folder in records:
        size = sum(p.stat().st_size for p in folder.iterdir())
        assert size <= BUDGET[folder.parent.name], (folder, size)
        assert folder.name == run_id(json.loads((folder / "config.json").read_text()))
        assert (folder / MANIFEST).is_file() and (folder / "DONE").is_file()
    report = import_records(COMMITTED, tmp_path / "copy")  # every check of the importer, on every record
    assert {r["status"] for r in report} == {"added"}
    assert len([r for r in report if r["kind"] != "dataset"]) == len(records)


def test_committed_h200_records_are_the_paper_profile_seed_0():
    """The imported H200 runs: ids the planner computes today, provenance kept, Table 1's teachers."""
    grid = load_grid()
    store = RunStore(REPO / "no-such-runs", "paper", results=COMMITTED)
    expected_acc = {"none": 0.8433, "flipcrop": 0.9050, "flipcrop+cutout": 0.9114, "flipcrop+mixup": 0.9050,
                    "flipcrop+cutmix": 0.9095}  # ../shared/gpu-runs/h200-2026-11-27/README.md
    for regime, acc in expected_acc.items():
        cfg = teacher_configs(grid, "paper", "main", "resnet18", regime, seeds=[0])[0]
        run = store.run(cfg)
        assert run.done and run.record, regime
        assert run.read_json("metrics.json")["test"]["accuracy"] == pytest.approx(acc, abs=5e-5)
        prov = run.provenance()
        assert prov["device_name"] == "NVIDIA H200" and prov["versions"]["torch"].startswith("2.11")
        assert prov["time"].startswith("2026-11-27")
    side = read_dataset_sidecar(COMMITTED, "paper", "cifar10")
    assert side is not None and side["human"].shape == (10000, 10) and side["images"].shape[1:] == (32, 32, 3)
    assert np.bincount(side["labels"][side["image_index"]]).tolist() == [40] * 10
    assert np.allclose(side["human"].sum(1), 1, atol=1e-3)


def test_explorer_points_join_records_and_images_on_original_indices():
    """Embeddings recorded for a subset, images present for another: the explorer keeps their common
    rows, per class, with labels, probabilities and images of the same test images."""
    from kdlib.book.explorer import explorer_points

    rng = np.random.default_rng(0)
    n = 200
    labels = np.repeat(np.arange(4), 50)
    indices = rng.permutation(1000)[:n]  # original test indices, in the run's order
    emb_rows = embedding_subset(labels, 30)
    pred = {"test_indices": indices, "test_labels": labels, "test_probs": rng.dirichlet(np.ones(4), n),
            "test_embedding_index": emb_rows, "test_embeddings": rng.normal(size=(len(emb_rows), 3))}
    order = rng.permutation(n)  # the view holds the same images in another order, images for half of them
    image_rows = np.sort(rng.permutation(n)[:100])
    view = {"indices": indices[order], "labels": labels[order], "image_rows": image_rows,
            "images": (np.arange(n)[order][image_rows][:, None, None, None] * np.ones((1, 2, 2, 1))).astype(np.uint8),
            "human": None}
    pts = explorer_points(pred, view, per_class=5)
    src = {int(i): k for k, i in enumerate(indices)}
    k = [src[int(i)] for i in pts["pick"]]
    assert np.array_equal(pts["labels"], labels[k]) and np.allclose(pts["probs"], pred["test_probs"][k])
    assert [int(im[0, 0, 0]) for im in pts["images"]] == k  # each image is its own row's
    emb_of = {int(indices[r]): j for j, r in enumerate(emb_rows)}
    assert np.allclose(pts["embeddings"], pred["test_embeddings"][[emb_of[int(i)] for i in pts["pick"]]])
    assert np.bincount(pts["labels"]).max() <= 5 and set(k) <= set(emb_rows)
    again = explorer_points(pred, view, per_class=5, pick=pts["pick"])
    assert np.array_equal(again["pick"], pts["pick"])


@needs_data
def test_migrating_configs_moves_records_and_keeps_them_importable(exported, tmp_path):
    """A parameter made explicit: records move to their new ids, students follow their teachers, every
    other file is kept byte for byte, and the importer's checks pass on the result."""
    from kdlib.runs.export import flipcrop_fill, migrate_records

    def to_legacy(cfg):  # the configs as they were written before flip+crop had a fill
        cfg["augment"] = cfg["augment"].replace(",fill=black", "")
        return cfg

    migrate_records(exported, PROFILE, to_legacy, "test: back to the legacy spelling")
    before = {p.name: {f.name: f.read_bytes() for f in p.iterdir()}
              for p in (exported / PROFILE).glob("*/*") if p.parent.name in ("teacher", "student")}
    ids = migrate_records(exported, PROFILE, flipcrop_fill("mean"), "test")
    assert ids and all(old in before and not (exported / PROFILE / "teacher" / old).exists() for old in ids)
    for kind in ("teacher", "student"):
        for folder in (exported / PROFILE / kind).iterdir():
            cfg = json.loads((folder / "config.json").read_text())
            assert folder.name == run_id(cfg)
            assert "flipcrop(" not in cfg["augment"] or "fill=mean" in cfg["augment"]
            old = next((o for o, n in ids.items() if n == folder.name), folder.name)
            for name, data in before[old].items():
                if name not in ("config.json", MANIFEST):
                    assert (folder / name).read_bytes() == data, (folder, name)
            if old != folder.name:
                assert json.loads((folder / MANIFEST).read_text())["migrated"]["from"] == old
            if kind == "student" and cfg.get("teacher"):
                assert (exported / PROFILE / "teacher" / cfg["teacher"] / "DONE").is_file()
    assert migrate_records(exported, PROFILE, flipcrop_fill("mean"), "again") == {}  # idempotent
    report = import_records(exported, tmp_path / "copy")
    assert {r["status"] for r in report} == {"added"}


def test_a_corrupt_dataset_sidecar_is_a_clear_error(tmp_path):
    from kdlib.runs.compact import RecordError
    from kdlib.runs.sidecar import sidecar_path

    path = sidecar_path(tmp_path, "paper", "cifar10")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(RecordError, match=r"cifar10-test.npz is not a readable dataset sidecar.*git checkout"):
        read_dataset_sidecar(tmp_path, "paper", "cifar10")
    np.savez(path, labels=np.zeros(3), indices=np.zeros(2), classes=np.array(["a"]))
    with pytest.raises(RecordError, match="disagree"):
        read_dataset_sidecar(tmp_path, "paper", "cifar10")
