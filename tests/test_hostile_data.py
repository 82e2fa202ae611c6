"""Hostile dataset files and caches: declared sizes checked before allocating, decoder errors named,
images of the wrong size refused, caches keyed by content, validated, rebuilt and kept out of
dataset folders."""
import gzip
import io
import json
import os
import struct
import tarfile
import time

import numpy as np
import pytest
from PIL import Image

import kdlib.data.cache as CACHE
import kdlib.data.registry as REG
from kdlib.data.formats import DataError
from kdlib.data.datasets import load_dataset
from kdlib.data.formats import read_idx

from test_data import make_mnist, png_bytes


def cifar_folder(root, size=32, per_class=2, split="test"):
    for c, cls in enumerate(REG.CIFAR10_CLASSES):
        d = root / split / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (d / f"{i}.png").write_bytes(png_bytes(np.full((size, size, 3), c * 20 + i, np.uint8)))
    return root


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "cache"))


def no_tmp(tmp_path):
    return not [p for p in tmp_path.rglob("*") if p.suffix in (".tmp", ".part")]


# ----------------------------------------------------------------------------- the cache
def test_symlinked_class_folders_are_walked_for_the_key(tmp_path):
    real = cifar_folder(tmp_path / "real")
    linked = tmp_path / "linked" / "test"
    linked.mkdir(parents=True)
    for cls in REG.CIFAR10_CLASSES:
        (linked / cls).symlink_to(real / "test" / cls, target_is_directory=True)
    a = load_dataset("cifar10", "test", root=tmp_path / "linked")
    assert len(a) == 20
    # a changed image behind a link changes the key: the stale cache is not served
    target = real / "test" / "cat" / "0.png"
    target.write_bytes(png_bytes(np.full((32, 32, 3), 255, np.uint8)))
    os.utime(target, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    b = load_dataset("cifar10", "test", root=tmp_path / "linked")
    assert a.checksum != b.checksum and b.images[b.labels == 3][0].max() == 255


def test_an_empty_listing_is_an_error_not_a_shared_key(tmp_path):
    for name in ("one", "two"):
        for cls in REG.CIFAR10_CLASSES:
            (tmp_path / name / "test" / cls).mkdir(parents=True)
    with pytest.raises(DataError, match="holds no files"):
        load_dataset("cifar10", "test", root=tmp_path / "one")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def _cached(tmp_path):
    (path,) = (tmp_path / "cache").glob("*.npz")
    with np.load(path) as z:
        return path, {k: z[k] for k in z.files}


@pytest.mark.parametrize("edit, why", [
    (lambda a: a.pop("labels"), "lacks the array 'labels'"),
    (lambda a: a.update(images=a["images"][:, :14]), "images are uint8"),
    (lambda a: a.update(images=a["images"].astype(np.float32)), "images are float32"),
    (lambda a: a.update(labels=a["labels"][:-1]), "labels are int64"),
    (lambda a: a.update(labels=a["labels"] + 50), "labels lie outside"),
    (lambda a: a.update(meta=np.array(json.dumps({"verified": False}))), "meta lacks the row order"),
    # in the valid format, contents edited: the digest of the arrays (bound to dataset, split, source) catches it
    (lambda a: a.pop("digest"), "it carries no digest of its contents"),
    (lambda a: a.update(labels=np.roll(a["labels"], 1)), "do not hash to the digest"),
    (lambda a: a.update(meta=np.array(str(a["meta"]).replace('"verified": false', '"verified": true'))),
     "do not hash to the digest"),
    (lambda a: a.update(digest=np.array("0" * 64)), "do not hash to the digest"),
])
def test_a_cache_that_does_not_match_is_rebuilt_with_a_warning(tmp_path, edit, why):
    make_mnist(tmp_path / "src")
    first = load_dataset("mnist", "test", root=tmp_path / "src", verify=False)
    path, arrays = _cached(tmp_path)
    edit(arrays)
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match=f"ignoring cache .*{why}.*rebuilding it"):
        again = load_dataset("mnist", "test", root=tmp_path / "src", verify=False)
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.meta["verified"] is False
    _, rebuilt = _cached(tmp_path)  # and the file on disk is whole again
    np.testing.assert_array_equal(rebuilt["labels"], first.labels)


def test_cache_never_lands_in_a_writable_shared_data_folder(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    make_mnist(shared)
    monkeypatch.delenv("KDLIB_CACHE")
    monkeypatch.setenv("KDLIB_DATA", str(shared))
    (tmp_path / "project").mkdir()
    monkeypatch.setattr(CACHE, "project_root", lambda: tmp_path / "project")  # the checkout's data/cache, stood in
    load_dataset("mnist", "test", verify=False)
    assert not (shared / "cache").exists()
    assert list((tmp_path / "project" / "data" / "cache").glob("mnist-test-*.npz"))


def test_stale_temp_files_of_killed_writes_are_swept(tmp_path):
    make_mnist(tmp_path / "src")
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = cache / "mnist-test-0123456789abcdef.npz.pid999999999.x1y2.tmp"
    old = cache / "mnist-test-0123456789abcdef.npz.abc.tmp"
    fresh = cache / "mnist-test-fedcba9876543210.npz.def.tmp"
    live = cache / f"mnist-test-fedcba9876543210.npz.pid{os.getpid()}.ghi.tmp"
    for p in (dead, old, fresh, live):
        p.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    load_dataset("mnist", "test", root=tmp_path / "src", verify=False)
    left = {p.name for p in cache.glob("*.tmp")}
    assert left == {fresh.name, live.name}  # a fresh file or a live writer's is left alone


# ----------------------------------------------------------------------------- readers
def idx_header(dims, dtype=0x08):
    return bytes([0, 0, dtype, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("dims", [(2**32 - 1, 2**32 - 1, 2**32 - 1), (100_000, 4096, 4096)])
def test_idx_dimensions_that_overflow_or_are_huge_are_refused_before_allocating(tmp_path, dims):
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(idx_header(dims) + b"\0" * 100)
    with pytest.raises(DataError, match=r"declares dimensions .* more than the .* bytes.*Replace it"):
        read_idx(path)


def test_gzip_that_expands_beyond_its_header_stops_at_the_promise(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:  # a 10-image header followed by 64 MiB of zeros (a few hundred KB packed)
        f.write(idx_header((10, 28, 28)))
        for _ in range(64):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(DataError, match="IDX header promises .* but the file holds more"):
        read_idx(path)


def test_idx_images_of_the_wrong_size_are_not_mnist(tmp_path):
    root = tmp_path / "src"
    make_mnist(root)
    from test_data import write_idx
    write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((20, 32, 32)))
    with pytest.raises(DataError, match="holds images of 32x32, but mnist's are 28x28"):
        load_dataset("mnist", "test", root=root, verify=False)


@pytest.mark.parametrize("as_tar", [False, True])
def test_an_image_folder_of_500px_images_is_not_cifar(tmp_path, as_tar):
    root = cifar_folder(tmp_path / "big", size=500, per_class=1)
    if as_tar:
        with tarfile.open(tmp_path / "test.tar.gz", "w:gz") as tar:
            tar.add(root / "test", arcname="test")
        root = tmp_path
        import shutil
        shutil.rmtree(tmp_path / "big")
    with pytest.raises(DataError, match="is 500x500, but the dataset's images are 32x32.*not a copy"):
        load_dataset("cifar10", "test", root=root, verify=False)
    assert no_tmp(tmp_path) and not list(tmp_path.rglob("*.npz"))  # nothing cached from a wrong copy


def test_decompression_bomb_is_a_data_error_naming_the_file(tmp_path, monkeypatch):
    root = cifar_folder(tmp_path / "src", per_class=1)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 32x32 image is then > 2x the limit: a "bomb"
    with pytest.raises(DataError, match=r"cannot decode image .*airplane/0.png: DecompressionBomb"):
        load_dataset("cifar10", "test", root=root, verify=False)


def test_garbage_bytes_with_an_image_name_are_a_data_error(tmp_path):
    root = cifar_folder(tmp_path / "src", per_class=1)
    (root / "test" / "dog" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 40)
    with pytest.raises(DataError, match=r"cannot decode image .*dog/0.png"):
        load_dataset("cifar10", "test", root=root, verify=False)


def test_huge_tar_member_is_refused_before_reading(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for cls in REG.CIFAR10_CLASSES:
            data = png_bytes(np.zeros((32, 32, 3), np.uint8))
            info = tarfile.TarInfo(f"test/{cls}/0.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        big = tarfile.TarInfo("test/cat/1.png")
        big.size = 64 << 20
        tar.addfile(big, io.BytesIO(bytes(big.size)))
    (tmp_path / "test.tar").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=r"member test/cat/1.png declares 67,108,864 bytes"):
        load_dataset("cifar10", "test", root=tmp_path, verify=False)
