"""Dataset resolver: real formats where the data is here, format-faithful fixtures where not."""
import gzip
import io
import os
import pickle
import struct
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kdlib.data.cache as CACHE
import kdlib.data.datasets as D
import kdlib.data.download as DL
import kdlib.data.formats as F
import kdlib.data.registry as REG
from kdlib.data.formats import DataError
from kdlib.data.registry import DatasetNotFoundError
from kdlib.data.human import human_labels_for, load_human_labels
from kdlib.data.datasets import load_dataset

from conftest import CIFAR10H, CIFAR_JPEG, FASHION, needs_cifar, needs_cifar10h, needs_real_fashion


# ----------------------------------------------------------------------------- fixture writers
def write_idx(path, array, gz=True):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_mnist(folder, n_train=30, n_test=20, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = np.arange(n) % 10
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", x, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", y, gz)
        arrays[split] = (x, y)
    return arrays


def make_cifar_batches(folder, per_batch=20, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    out = {"train": [], "test": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
        out["test" if name == "test_batch" else "train"].append((data, labels))
    return out


def png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_cinic(folder, seed=0):
    """CINIC-10 layout with its naming: ImageNet files n<wnid>_<id>.png, CIFAR ones cifar10-<split>-<i>.png."""
    rng = np.random.default_rng(seed)
    expected = []  # (class index, file) of the images test-imagenet must keep
    dup = None
    for split in ("train", "valid", "test"):
        for c, cls in enumerate(REG.CIFAR10_CLASSES):
            d = folder / split / cls
            d.mkdir(parents=True)
            for k in range(3):
                img = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                (d / f"n0{c}_{k}.png").write_bytes(png_bytes(img))
                if split == "test":
                    expected.append((c, f"n0{c}_{k}.png", img))
            (d / f"cifar10-{split}-{c}.png").write_bytes(png_bytes(np.zeros((32, 32, 3), np.uint8)))
    # one exact duplicate and one unreadable file in test
    c, fname, img = expected[4]
    (folder / "test" / REG.CIFAR10_CLASSES[c] / "n0zz_dup.png").write_bytes(png_bytes(img))
    (folder / "test" / "cat" / "n0zz_broken.png").write_bytes(b"not a png at all")
    return expected


# ----------------------------------------------------------------------------- IDX (MNIST format)
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_fixture_round_trips(tmp_path, gz):
    arrays = make_mnist(tmp_path, gz=gz)
    for split in ("train", "test"):
        ds = load_dataset("mnist", split, root=tmp_path, verify=False)
        x, y = arrays[split]
        assert ds.images.shape == (len(y), 28, 28, 1) and ds.images.dtype == np.uint8
        assert np.array_equal(ds.images[..., 0], x) and np.array_equal(ds.labels, y)
        assert ds.labels.dtype == np.int64 and ds.order == "original"
        assert str(tmp_path) in ds.source


def test_mnist_torchvision_layout_is_found(tmp_path):
    arrays = make_mnist(tmp_path / "MNIST" / "raw")
    ds = load_dataset("mnist", "test", root=tmp_path, verify=False)
    assert np.array_equal(ds.images[..., 0], arrays["test"][0])


def test_mnist_fixture_fails_the_official_checksum(tmp_path):
    make_mnist(tmp_path)
    with pytest.raises(DataError, match="checksum mismatch.*t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", "test", root=tmp_path)


def test_idx_with_bad_magic_or_truncation_names_the_file(tmp_path):
    make_mnist(tmp_path, gz=False)
    f = tmp_path / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", "test", root=tmp_path, verify=False)
    f.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="bad magic"):
        load_dataset("mnist", "test", root=tmp_path, verify=False)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    make_mnist(tmp_path)
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*(corrupt|truncated)"):
        load_dataset("mnist", "train", root=tmp_path, verify=False)


@needs_real_fashion
def test_real_fashion_mnist_equals_torchvision_reader(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in FASHION.glob("*.gz"):
        (raw / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    for split, train in (("train", True), ("test", False)):
        ours = load_dataset("fashion-mnist", split)
        assert "/usr/share/datasets/fashion-mnist" in ours.source and ours.meta["verified"]
        ref = torchvision.datasets.FashionMNIST(str(tmp_path), train=train, download=False)
        assert np.array_equal(ours.images[..., 0], ref.data.numpy())
        assert np.array_equal(ours.labels, ref.targets.numpy())
        assert len(ours) == (60000 if train else 10000)
        assert np.bincount(ours.labels).tolist() == [len(ours) // 10] * 10


# ----------------------------------------------------------------------------- CIFAR-10 python batches
def test_cifar_python_batches_fixture(tmp_path):
    written = make_cifar_batches(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", "train", root=tmp_path, verify=False)
    data = np.concatenate([d for d, _ in written["train"]])
    expected = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert np.array_equal(ds.images, expected)
    assert ds.labels.tolist() == sum((lab for _, lab in written["train"]), [])
    test = load_dataset("cifar10", "test", root=tmp_path, verify=False)
    assert len(test) == 20 and test.order == "original"


def test_cifar_pickles_are_checksummed_before_unpickling(tmp_path):
    make_cifar_batches(tmp_path / "cifar-10-batches-py")
    with pytest.raises(DataError, match="checksum mismatch.*test_batch"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_pickle_with_foreign_objects_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    make_cifar_batches(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": os.getcwd, "labels": []}))
    with pytest.raises(DataError, match="not a valid CIFAR-10 batch.*refusing"):
        load_dataset("cifar10", "test", root=tmp_path, verify=False)


def test_cifar_python_tarball_fixture(tmp_path):
    src = tmp_path / "src"
    written = make_cifar_batches(src / "cifar-10-batches-py")
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    ds = load_dataset("cifar10", "test", root=root, verify=False)
    assert ds.labels.tolist() == written["test"][0][1]
    with pytest.raises(DataError, match="checksum mismatch.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", "test", root=root)


# ----------------------------------------------------------------------------- CIFAR-10 JPEG copy (real)
@pytest.fixture(scope="module")
def cifar_test():
    return load_dataset("cifar10", "test", root=CIFAR_JPEG)


@needs_cifar
def test_real_cifar_jpeg_test_in_original_order(cifar_test):
    ds = cifar_test
    assert ds.images.shape == (10000, 32, 32, 3)
    assert np.bincount(ds.labels).tolist() == [1000] * 10
    assert ds.order == "original" and ds.meta["verified"]
    assert len(ds.meta["uncertain_indices"]) == 724
    # independent expectation: the recovered original labels shipped beside the copy
    assert np.array_equal(ds.labels, np.load(CIFAR_JPEG / "alignment" / "test_labels.npy"))
    # first test images of CIFAR-10 are cat, ship, ship, airplane, frog (the dataset's README)
    assert ds.labels[:5].tolist() == [3, 8, 8, 0, 6]
    assert ds.files[:3].tolist() == ["cat/0000.jpg", "ship/0000.jpg", "ship/0001.jpg"]


@needs_cifar
@needs_cifar10h
def test_real_cifar10h_joins_the_test_set(cifar_test):
    human = human_labels_for(cifar_test, root=CIFAR10H)
    agree = (human.argmax(1) == cifar_test.labels).mean()
    assert agree > 0.98
    sub = D.stratified_subset(cifar_test, 20, seed=1)
    np.testing.assert_array_equal(human_labels_for(sub, human=load_human_labels(CIFAR10H)), human[sub.indices])


@needs_cifar
def test_real_cifar_jpeg_equals_torchvision_imagefolder(tmp_path, cifar_test):
    torchvision = pytest.importorskip("torchvision")
    with tarfile.open(CIFAR_JPEG / "test.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    ours = load_dataset("cifar10", "test", root=tmp_path)  # a plain folder, no index map
    assert ours.order == "folder"
    ref = torchvision.datasets.ImageFolder(str(tmp_path / "test"))
    assert ref.classes == REG.CIFAR10_CLASSES
    assert np.array_equal(ours.labels, np.array(ref.targets))
    for i in range(0, 10000, 97):
        img, _ = ref[i]
        assert np.array_equal(ours.images[i], np.asarray(img)), i
    # the same pixels as the tarball in original order, permuted
    pos = {f: i for i, f in enumerate(ours.files.tolist())}
    perm = np.array([pos[f] for f in cifar_test.files.tolist()])
    assert np.array_equal(ours.images[perm], cifar_test.images)
    with pytest.raises(DataError, match="folder order.*test_index_to_file.txt"):
        human_labels_for(ours, human=np.full((10000, 10), 0.1))


@needs_cifar
def test_real_cifar_jpeg_train():
    ds = load_dataset("cifar10", "train", root=CIFAR_JPEG)
    assert ds.images.shape == (50000, 32, 32, 3)
    assert np.bincount(ds.labels).tolist() == [5000] * 10
    assert ds.order == "folder"  # training order is irrelevant; no map exists for it


def test_image_folder_with_wrong_classes_is_an_error(tmp_path):
    for cls in REG.CIFAR10_CLASSES[:9] + ["zebra"]:
        (tmp_path / "test" / cls).mkdir(parents=True)
        (tmp_path / "test" / cls / "0.png").write_bytes(png_bytes(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(DataError, match="missing \\['truck'\\].*unexpected \\['zebra'\\]"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_truncated_image_tarball_is_a_clear_error(tmp_path):
    src = tmp_path / "src"
    make_cinic(src)
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "test.tar.gz", "w:gz") as tar:
        tar.add(src / "test", arcname="test")
    data = (root / "test.tar.gz").read_bytes()
    (root / "test.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="test.tar.gz.*(corrupt|truncated)"):
        load_dataset("cifar10", "test", root=root, verify=False)


def test_bad_index_map_is_an_error(tmp_path):
    for c, cls in enumerate(REG.CIFAR10_CLASSES):
        (tmp_path / "test" / cls).mkdir(parents=True)
        (tmp_path / "test" / cls / "0000.png").write_bytes(png_bytes(np.full((32, 32, 3), c, np.uint8)))
    lines = [f"{9 - c}\t{cls}/0000.png" for c, cls in enumerate(REG.CIFAR10_CLASSES)]
    (tmp_path / "test_index_to_file.txt").write_text("\n".join(lines))
    ds = load_dataset("cifar10", "test", root=tmp_path)
    assert ds.order == "original" and ds.labels.tolist() == list(range(9, -1, -1))
    assert ds.images[0, 0, 0, 0] == 9
    (tmp_path / "test_index_to_file.txt").write_text("\n".join(lines[:-1] + ["3\tcat/0000.png"]))
    with pytest.raises(DataError, match="test_index_to_file.txt"):
        load_dataset("cifar10", "test", root=tmp_path)


# ----------------------------------------------------------------------------- CINIC-10
@pytest.mark.parametrize("as_tar", [False, True])
def test_cinic_test_imagenet_filters_cifar_duplicates_and_unreadable(tmp_path, as_tar):
    src = tmp_path / "CINIC-10"
    expected = make_cinic(src)
    root = tmp_path
    if as_tar:
        root = tmp_path / "tarred"
        root.mkdir()
        with tarfile.open(root / "CINIC-10.tar.gz", "w:gz") as tar:
            for split in ("train", "valid", "test"):
                tar.add(src / split, arcname=split)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset("cinic10", "test-imagenet", root=root)
    assert ds.meta["dropped_duplicates"] == 1 and ds.meta["dropped_unreadable"] == 1
    assert any("dropped 1 exact duplicates and 1 unreadable" in str(w.message) for w in caught)
    assert len(ds) == len(expected) == 30
    assert not any("cifar" in f for f in ds.files.tolist())
    got = {f: (lab, img) for f, lab, img in zip(ds.files.tolist(), ds.labels, ds.images)}
    for c, fname, img in expected:
        lab, arr = got[f"{REG.CIFAR10_CLASSES[c]}/{fname}"]
        assert lab == c and np.array_equal(arr, img)
    full = load_dataset("cinic10", "valid", root=root)
    assert len(full) == 40  # 3 ImageNet + 1 CIFAR file per class


def test_cinic_unreadable_file_outside_test_imagenet_is_an_error(tmp_path):
    make_cinic(tmp_path / "cinic10")
    with pytest.raises(DataError, match="n0zz_broken.png"):
        load_dataset("cinic10", "test", root=tmp_path)


# ----------------------------------------------------------------------------- resolver, cache, subset
def test_not_found_names_every_place_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setitem(REG.SYSTEM_DIRS, "fashion-mnist", [tmp_path / "system"])
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "mine"))
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", "train")
    msg = str(err.value)
    assert str(tmp_path / "mine") in msg and str(tmp_path / "system") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "download=True" in msg


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*cifar10"):
        load_dataset("imagenet", "train")
    with pytest.raises(ValueError, match="unknown split 'val'.*valid"):
        load_dataset("cinic10", "val")


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "cache"))
    make_mnist(tmp_path)
    first = load_dataset("mnist", "train", root=tmp_path, verify=False)
    cached = list((tmp_path / "cache").glob("mnist-train-*.npz"))
    assert len(cached) == 1
    real_decode = D._decode
    monkeypatch.setattr(D, "_decode", lambda *a, **k: pytest.fail("decoded again instead of using the cache"))
    second = load_dataset("mnist", "train", root=tmp_path, verify=False)
    assert np.array_equal(first.images, second.images) and second.source == first.source
    # a changed source file changes the key: no stale cache is served
    monkeypatch.setattr(D, "_decode", real_decode)
    make_mnist(tmp_path, seed=5)
    third = load_dataset("mnist", "train", root=tmp_path, verify=False)
    assert not np.array_equal(third.images, first.images)


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "cache"))
    make_mnist(tmp_path / "d")
    first = load_dataset("mnist", "test", root=tmp_path / "d", verify=False)
    (cache,) = (tmp_path / "cache").glob("*.npz")
    cache.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = load_dataset("mnist", "test", root=tmp_path / "d", verify=False)
    assert np.array_equal(again.images, first.images)


def test_failed_cache_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "cache"))
    make_mnist(tmp_path / "d")

    def exploding_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(D.np, "savez", exploding_savez)
    with pytest.warns(UserWarning, match="could not write the cache"):
        ds = load_dataset("mnist", "test", root=tmp_path / "d", verify=False)
    assert len(ds) == 20
    assert list((tmp_path / "cache").iterdir()) == []


def test_stratified_subset_is_seeded_and_keeps_indices(tmp_path):
    make_mnist(tmp_path, n_train=100)
    full = load_dataset("mnist", "train", root=tmp_path, verify=False)
    a = load_dataset("mnist", "train", root=tmp_path, verify=False, subset=3, seed=1)
    b = load_dataset("mnist", "train", root=tmp_path, verify=False, subset=3, seed=1)
    c = load_dataset("mnist", "train", root=tmp_path, verify=False, subset=3, seed=2)
    assert np.bincount(a.labels).tolist() == [3] * 10
    assert np.array_equal(a.indices, b.indices) and not np.array_equal(a.indices, c.indices)
    assert np.array_equal(a.images, full.images[a.indices]) and np.all(np.diff(a.indices) > 0)
    with pytest.raises(ValueError, match="has only 10 images"):
        D.stratified_subset(full, 11)
    with pytest.raises(ValueError, match="positive number"):
        D.stratified_subset(full, 0)


# ----------------------------------------------------------------------------- downloads
def test_download_verifies_and_renames_only_on_match(tmp_path, monkeypatch):
    fixture = tmp_path / "fixture"
    make_mnist(fixture)

    def fake_fetch(url, dest, timeout=60.0):
        Path(dest).write_bytes((fixture / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(DL, "_fetch_url", fake_fetch)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("mnist", "train", root=tmp_path / "dl", download=True)
    assert list((tmp_path / "dl").iterdir()) == []  # nothing half-downloaded is left
    # the official checksum of a file we can produce: pretend the fixture is official
    for stem in REG._MNIST_GZ_MD5:
        digest = F.file_digest(fixture / f"{stem}.gz", "md5")
        monkeypatch.setitem(REG.KNOWN_CHECKSUMS, ("mnist", f"{stem}.gz"), [("md5", digest, "file")])
    ds = load_dataset("mnist", "train", root=tmp_path / "dl", download=True)
    assert len(ds) == 30 and ds.meta["verified"]


def test_download_failure_says_how_to_fix(tmp_path, monkeypatch):
    def offline(url, dest, timeout=60.0):
        raise OSError("network unreachable")

    monkeypatch.setattr(DL, "_fetch_url", offline)
    with pytest.raises(DataError, match="download of .* failed.*copy"):
        load_dataset("mnist", "test", root=tmp_path, download=True)


# ----------------------------------------------------------------------------- CIFAR-10H
@needs_cifar10h
def test_real_cifar10h_loads_and_validates():
    probs, counts = load_human_labels(root=CIFAR10H, counts=True)
    assert probs.shape == (10000, 10) and counts.shape == (10000, 10)
    np.testing.assert_allclose(probs.sum(1), 1)
    assert counts.sum(1).min() >= 47  # about 50 annotators per image
    assert (probs == 0).mean() > 0.75  # the sparsity that makes KL(model || human) infinite


def write_human(folder, probs):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "cifar10h-probs.npy", probs)


def test_cifar10h_wrong_shape_or_sums(tmp_path):
    write_human(tmp_path / "a", np.full((100, 10), 0.1))
    with pytest.raises(DataError, match=r"shape \(100, 10\).*\(10000, 10\)"):
        load_human_labels(root=tmp_path / "a", verify=False)
    write_human(tmp_path / "b", np.full((10000, 10), 0.2))
    with pytest.raises(DataError, match="sum to 1"):
        load_human_labels(root=tmp_path / "b", verify=False)
    write_human(tmp_path / "c", np.full((10000, 10), 0.1))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_human_labels(root=tmp_path / "c")
    assert load_human_labels(root=tmp_path / "c", verify=False).shape == (10000, 10)
    with pytest.raises(DatasetNotFoundError, match="CIFAR-10H.*download=True"):
        load_human_labels(root=tmp_path / "none")


def test_human_labels_only_for_cifar10_test(tmp_path):
    make_mnist(tmp_path)
    ds = load_dataset("mnist", "test", root=tmp_path, verify=False)
    with pytest.raises(ValueError, match="only for the CIFAR-10 test set"):
        human_labels_for(ds, human=np.full((10000, 10), 0.1))


def test_cache_never_lands_in_a_read_only_data_root(tmp_path, monkeypatch):
    src = tmp_path / "readonly"
    make_mnist(src)
    src.chmod(0o555)
    monkeypatch.delenv("KDLIB_CACHE")
    monkeypatch.setenv("KDLIB_DATA", str(src))
    monkeypatch.setattr(CACHE, "project_root", lambda: tmp_path)  # the checkout's data/cache, stood in
    try:
        load_dataset("mnist", "test", verify=False)
        assert not (src / "cache").exists()
        assert list((tmp_path / "data" / "cache").glob("mnist-test-*.npz"))
    finally:
        src.chmod(0o755)


def test_committed_fixture_loads_verified_with_smoke_sizes():
    """The tiny Fashion-MNIST the smoke profile runs on where Debian's copy is absent: real IDX format,
    verified by its own checksums, enough images per class for the smoke profile (10) and the tests (30)."""
    from conftest import FIXTURE_DATA

    train = load_dataset("fashion-mnist", "train", root=FIXTURE_DATA, cache=False)
    test = load_dataset("fashion-mnist", "test", root=FIXTURE_DATA, cache=False)
    assert train.meta["verified"] and test.meta["verified"]
    assert np.bincount(train.labels).tolist() == [30] * 10 and np.bincount(test.labels).tolist() == [20] * 10
    assert train.images.shape == (300, 28, 28, 1) and train.images.dtype == np.uint8
    assert load_dataset("fashion-mnist", "train", root=FIXTURE_DATA, subset=10, cache=False).images.shape[0] == 100


@needs_real_fashion
def test_fixture_script_reproduces_the_committed_fixture_from_the_real_files(tmp_path):
    import subprocess
    import sys

    from conftest import FIXTURE_FASHION, REPO

    subprocess.run([sys.executable, str(REPO / "scripts" / "make_idx_fixture.py"), str(FASHION), str(tmp_path)],
                   check=True, capture_output=True)
    for f in FIXTURE_FASHION.glob("*.gz"):
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f.name
    real = load_dataset("fashion-mnist", "train")
    first = np.sort(np.concatenate([np.flatnonzero(real.labels == c)[:30] for c in range(10)]))
    tiny = load_dataset("fashion-mnist", "train", root=FIXTURE_FASHION.parent, cache=False)
    assert np.array_equal(tiny.images, real.images[first]) and np.array_equal(tiny.labels, real.labels[first])


def test_one_cache_location_whatever_the_working_folder(tmp_path, monkeypatch):
    from pathlib import Path

    from kdlib.base.paths import REPO

    monkeypatch.delenv("KDLIB_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)  # a kernel started in notebooks/ or anywhere else
    assert CACHE._cache_dir() == REPO / "data" / "cache"
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "c"))
    assert CACHE._cache_dir() == tmp_path / "c"
