"""The last hostile inputs (issue 23, items 2-4): files that claim far more than they hold are refused before
anything of the claimed size is allocated; a decoded-data cache with edited contents is rebuilt, never used;
recipe and regime values out of bounds (those derived from the data included) are refused at plan time."""
import gzip
import io
import pickle
import struct
import tarfile
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import kdlib.data.decode as DEC
import kdlib.data.registry as REG
import kdlib.data.formats as F
import kdlib.data.images as IM
from kdlib.data.formats import DataError
from kdlib.data.datasets import load_dataset
from kdlib.data.human import load_human_labels

from test_data import make_cifar_batches, make_mnist, png_bytes
from test_hostile_data import cifar_folder, idx_header


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "cache"))


class peak_memory:
    """The peak of Python's (and numpy's) allocations inside the block, in bytes."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


# ----------------------------------------------------------------------------- item 2: IDX
@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_claiming_a_billion_images_in_1kb_is_refused(tmp_path, gz):
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    payload = idx_header((10**9, 28, 28)) + bytes(1000)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(DataError, match=r"declares dimensions \(1000000000, 28, 28\) \(784,000,000,000 bytes\), "
                                        r"more than the 1,073,741,824 bytes"):
        F.read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_within_the_cap_but_beyond_the_file_is_refused_before_allocating(tmp_path, gz):
    # a million images (784 MB) is under the 1 GiB cap, but a 1 KB file cannot hold them (nor can a 1 KB gzip:
    # deflate expands at most 1032-fold): refused from the header, before any buffer of that size exists
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    payload = idx_header((10**6, 28, 28)) + bytes(1000)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    kind = "gzip file" if gz else "file"
    with peak_memory() as mem, pytest.raises(DataError, match=rf"declares dimensions \(1000000, 28, 28\) "
                                                              rf"\(784,000,000 bytes\), but a {kind} of [\d,]+ bytes "
                                                              rf"holds at most [\d,]+.*Replace it"):
        F.read_idx(path)
    assert mem.peak < 1 << 20


def test_gzip_idx_whose_stream_falls_short_costs_only_what_is_there(tmp_path):
    # 200 MB promised, within what 300 KB of gzip could hold; the stream has 1 MB: read in chunks, then refused
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(idx_header((255_102, 28, 28)))
        f.write(bytes(1 << 20))
        f.write(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes())  # incompressible
    with peak_memory() as mem, pytest.raises(DataError, match=r"IDX header promises .* but the file holds 1348576"):
        F.read_idx(path)
    assert mem.peak < 16 << 20  # the chunks read, not the 200 MB promised


def test_a_gzip_bomb_under_an_official_name_is_refused_while_its_checksum_streams(tmp_path, monkeypatch):
    # the payload checksum of a Fashion-MNIST .gz streams its decompressed bytes: capped at MAX_IDX_BYTES (lowered
    # here to 1 MiB to spare writing a 1 GiB bomb), not hashed for minutes
    make_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(4 << 20)))
    monkeypatch.setattr(F, "MAX_IDX_BYTES", 1 << 20)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: decompresses to at least [\d,]+ bytes, more "
                                        r"than the cap of 1,048,576"):
        load_dataset("fashion-mnist", "test", root=tmp_path)


# ----------------------------------------------------------------------------- item 2: CIFAR python batches
def test_cifar_batch_whose_data_is_a_list_of_one_repeated_row_is_refused(tmp_path):
    # pickle memoises the row: a 200 KB file whose list would be converted into a 300 MB array
    root = tmp_path / "src"
    make_cifar_batches(root / "cifar-10-batches-py")
    row = bytes(3072)
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(
        pickle.dumps({b"data": [row] * 100_000, b"labels": [0] * 100_000}, protocol=2))
    assert (root / "cifar-10-batches-py" / "test_batch").stat().st_size < 1 << 20
    with pytest.raises(DataError, match=r"test_batch: 'data' is list .*not the uint8 array of a CIFAR-10 batch"):
        load_dataset("cifar10", "test", root=root, verify=False)


def test_cifar_batch_file_beyond_the_cap_is_refused_before_reading(tmp_path):
    root = tmp_path / "src"
    make_cifar_batches(root / "cifar-10-batches-py")
    with open(root / "cifar-10-batches-py" / "test_batch", "r+b") as f:
        f.truncate(F.MAX_MEMBER_BYTES + 1)  # sparse: 256 MiB claimed by the file system, nothing written
    with peak_memory() as mem, pytest.raises(DataError, match=r"test_batch: the CIFAR-10 batch is 268,435,457 bytes, "
                                                              r"more than the cap of 268,435,456"):
        load_dataset("cifar10", "test", root=root, verify=False)
    assert mem.peak < 4 << 20  # the source key hashes the file in 1 MiB chunks


def test_cifar_archive_member_claiming_more_than_a_batch_is_refused(tmp_path, monkeypatch):
    # a gzip tarball whose member claims 10 GB but whose stream ends: refused while listing, nothing allocated
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(
        gzip.compress(tar_with_claim("cifar-10-batches-py/test_batch", 10 * 2**30)))
    with peak_memory() as mem, pytest.raises(DataError, match=r"cifar-10-python.tar.gz: unexpected end of data.*"
                                                              r"truncated; fetch it again"):
        load_dataset("cifar10", "test", root=tmp_path, verify=False)
    assert mem.peak < 4 << 20
    # a member that holds what it claims, beyond the cap (lowered here to spare writing 256 MiB): refused unread
    monkeypatch.setattr(DEC, "MAX_MEMBER_BYTES", 1000)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = 5000
        tar.addfile(info, io.BytesIO(bytes(5000)))
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(out.getvalue())
    with pytest.raises(DataError, match=r"CIFAR-10 batch cifar-10-batches-py/test_batch declares 5,000 bytes, more "
                                        r"than the cap of 1,000"):
        load_dataset("cifar10", "test", root=tmp_path, verify=False)


# ----------------------------------------------------------------------------- item 2: tarballs of images
def tar_with_claim(name: str, size: int, data: bytes = b"x" * 100, others=()) -> bytes:
    """An uncompressed tarball whose member ``name`` claims ``size`` bytes but holds ``data``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for other in others:
            blob = png_bytes(np.zeros((32, 32, 3), np.uint8))
            info = tarfile.TarInfo(other)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    raw = out.getvalue().rstrip(b"\0")
    raw += b"\0" * (-len(raw) % 512)
    info = tarfile.TarInfo(name)
    info.size = size
    return raw + info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % 512)


def test_tar_member_claiming_10gb_in_a_small_archive_is_refused_before_reading(tmp_path):
    classes = [f"test/{c}/0.png" for c in REG.CIFAR10_CLASSES]
    (tmp_path / "test.tar").write_bytes(tar_with_claim("test/cat/1.png", 10 * 2**30, others=classes))
    assert (tmp_path / "test.tar").stat().st_size < 64 << 10
    with peak_memory() as mem, pytest.raises(DataError, match=r"member test/cat/1.png claims 10,737,418,240 bytes at "
                                                              r"offset [\d,]+, but the archive holds only [\d,]+ bytes"):
        load_dataset("cifar10", "test", root=tmp_path, verify=False)
    assert mem.peak < 4 << 20


def test_compressed_tar_member_claiming_more_than_its_stream_costs_only_what_is_there(tmp_path):
    # a gzip tarball's member claims 12 MB (under the 16 MiB image cap); its stream ends after 100 bytes
    classes = [f"test/{c}/0.png" for c in REG.CIFAR10_CLASSES]
    (tmp_path / "test.tar.gz").write_bytes(gzip.compress(tar_with_claim("test/cat/1.png", 12 << 20, others=classes)))
    with peak_memory() as mem, pytest.raises(DataError, match=r"test.tar.gz: unexpected end of data.*truncated"):
        load_dataset("cifar10", "test", root=tmp_path, verify=False)
    assert mem.peak < 8 << 20


def test_an_archive_of_too_many_entries_is_refused_while_listing(tmp_path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for i in range(20):
            tar.addfile(tarfile.TarInfo(f"test/cat/{i}.png"), io.BytesIO(b""))
    (tmp_path / "a.tar").write_bytes(out.getvalue())
    with tarfile.open(tmp_path / "a.tar") as tar, pytest.raises(DataError, match="holds more than 10 entries"):
        IM.tar_members(tar, tmp_path / "a.tar", max_members=10)


# ----------------------------------------------------------------------------- item 2: images
def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels, with one tiny IDAT: a few dozen bytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_image_declaring_more_pixels_than_the_cap_is_refused_before_decoding(tmp_path):
    root = cifar_folder(tmp_path / "src", per_class=1)
    (root / "test" / "cat" / "0.png").write_bytes(png_header(5000, 5000))  # 25 M pixels in ~80 bytes
    with peak_memory() as mem, pytest.raises(DataError, match=r"image .*cat/0.png declares 5000x5000 = 25,000,000 "
                                                              r"pixels in \d+ bytes, more than the cap of 16,777,216"):
        load_dataset("cifar10", "test", root=root, verify=False)
    assert mem.peak < 8 << 20


# ----------------------------------------------------------------------------- item 2: .npz and .npy
def npy_claiming(shape, data: bytes = b"\0" * 64, dtype="|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def npz_with(path, entries: dict):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, blob in entries.items():
            zf.writestr(name + ".npy", blob)


@pytest.mark.parametrize("shape, needle", [
    ((10**12,), r"declare \(at images.npy, shape \(1000000000000,\)\) 1,000,000,000,000 bytes, more than the cap"),
    ((10**8,), r"images.npy: its header declares an array of shape \(100000000,\) \(uint8, 100,000,000 bytes\) but "
               r"the entry holds 64 bytes"),
])
def test_npz_whose_header_claims_a_huge_array_is_refused_before_loading(tmp_path, shape, needle):
    path = tmp_path / "x.npz"
    npz_with(path, {"images": npy_claiming(shape), "labels": npy_claiming((8,), bytes(64), "<i8")})
    with peak_memory() as mem, pytest.raises(DataError, match=needle):
        F.read_npz(path)
    assert mem.peak < 1 << 20


def test_npz_with_a_zip_header_claiming_more_than_its_stored_bytes_is_refused(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.arange(10))
    raw = bytearray(path.read_bytes())
    # the central directory's uncompressed size of the one entry (offset 24 in its record) says 1 GB
    cd = raw.rindex(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = struct.pack("<I", 10**9)
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"a.npy: the zip header claims 1,000,000,000 bytes from \d+ stored"):
        F.read_npz(path)


def test_cifar10h_npy_claiming_a_huge_array_is_refused_before_loading(tmp_path):
    (tmp_path / "cifar10h-probs.npy").write_bytes(npy_claiming((10**9, 10), dtype="<f8"))
    with peak_memory() as mem, pytest.raises(DataError, match=r"cifar10h-probs.npy: its header declares an array of "
                                                              r"shape \(1000000000, 10\) \(float64\): 80,000,000,000 "
                                                              r"bytes, more than the cap of 800,000"):
        load_human_labels(root=tmp_path, verify=False)
    assert mem.peak < 1 << 20


def test_a_hostile_npz_in_the_cache_is_rebuilt_not_loaded(tmp_path):
    make_mnist(tmp_path / "src")
    first = load_dataset("mnist", "test", root=tmp_path / "src", verify=False)
    (path,) = (tmp_path / "cache").glob("*.npz")
    npz_with(path, {"images": npy_claiming((10**8, 28, 28, 1))})
    with peak_memory() as mem, pytest.warns(UserWarning, match=r"ignoring unreadable cache .*its arrays declare \(at "
                                                              r"images.npy.*more than the cap.*rebuilding it"):
        again = load_dataset("mnist", "test", root=tmp_path / "src", verify=False)
    np.testing.assert_array_equal(again.images, first.images)
    assert mem.peak < 64 << 20


# ----------------------------------------------------------------------------- item 3: caches checked, not trusted
def _cached(tmp_path):
    (path,) = (tmp_path / "cache").glob("*.npz")
    with np.load(path) as z:
        return path, {k: z[k] for k in z.files}


def test_a_cache_with_one_edited_pixel_is_rebuilt_with_a_warning_naming_it(tmp_path):
    make_mnist(tmp_path / "src")
    first = load_dataset("mnist", "test", root=tmp_path / "src", verify=False)
    path, arrays = _cached(tmp_path)
    assert arrays["digest"].ndim == 0 and len(str(arrays["digest"])) == 64
    arrays["images"][3, 10, 10, 0] ^= 1  # one pixel, one bit: same format, shapes, dtypes, label range, meta
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match=rf"ignoring cache {path}: its contents do not hash to the digest it carries "
                                         rf"for this source.*rebuilding it"):
        again = load_dataset("mnist", "test", root=tmp_path / "src", verify=False)
    np.testing.assert_array_equal(again.images, first.images)  # the edited pixel was never used
    _, rebuilt = _cached(tmp_path)
    np.testing.assert_array_equal(rebuilt["images"], first.images)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and the rebuilt cache is used silently
        third = load_dataset("mnist", "test", root=tmp_path / "src", verify=False)
    np.testing.assert_array_equal(third.images, first.images)


def test_a_cache_copied_from_another_source_is_rebuilt(tmp_path):
    make_mnist(tmp_path / "a", seed=0)
    make_mnist(tmp_path / "b", seed=1)
    load_dataset("mnist", "test", root=tmp_path / "a", verify=False)
    (path_a,) = (tmp_path / "cache").glob("*.npz")
    b = load_dataset("mnist", "test", root=tmp_path / "b", verify=False)
    path_b = next(p for p in (tmp_path / "cache").glob("*.npz") if p != path_a)
    path_b.write_bytes(path_a.read_bytes())  # a's valid cache under b's name
    with pytest.warns(UserWarning, match=f"ignoring cache {path_b}: its contents do not hash"):
        again = load_dataset("mnist", "test", root=tmp_path / "b", verify=False)
    np.testing.assert_array_equal(again.images, b.images)


# ----------------------------------------------------------------------------- item 4: every value bounded at load
from conftest import grid_with  # noqa: E402
from kdlib.runs.plan import load_grid
from kdlib.runs.execute import main as grid_main  # noqa: E402

from test_hostile_grid import E, smoke  # noqa: E402


def on_cifar(g):
    """The smoke profile on CIFAR-10 (32-px images) instead of Fashion-MNIST."""
    smoke(g)["datasets"]["main"]["name"] = "cifar10"


def student(g, **values):
    smoke(g)["recipes"]["student"].update(values)


BOUNDED = {
    # derived from the data
    "padding 40 on 32-px images": (
        lambda g: (on_cifar(g), E(g)["E4"].update(student_regimes=["flipcrop(padding=40)"])),
        r"grid.yaml: experiments.E4.student_regimes: 'flipcrop\(padding=40\)' on the 32x32 images of cifar10 "
        r"\(profiles.\S+.datasets.main\): flipcrop: padding 40 is not less than the 32-px side.*Use a padding below 32"),
    "padding 28 on 28-px images": (
        lambda g: E(g)["E1"]["teachers"].update(regimes=["none", "flipcrop(padding=28)"]),
        r"experiments.E1.teachers.regimes: 'flipcrop\(padding=28\)' on the 28x28 images of fashion-mnist .*"
        r"padding 28 is not less than the 28-px side"),
    "Cutout hole beyond the image": (
        lambda g: E(g)["E5"].update(teacher_regimes=["flipcrop+cutout(length=29)"]),
        r"experiments.E5.teacher_regimes: 'flipcrop\+cutout\(length=29\)' on the 28x28 images of .*cutout: length 29 "
        r"is more than the 28-px side.*Use a length of at most 28"),
    "Cutout hole beyond the MNIST image of a from: experiment": (
        lambda g: E(g)["E3"].update(student_regimes=["cutout(length=30)"]),
        r"experiments.E3.student_regimes: 'cutout\(length=30\)' on the 28x28 images of mnist "
        r"\(profiles.\S+.datasets.mnist\)"),
    "subset beyond the smallest class": (
        lambda g: smoke(g)["datasets"]["mnist"].update(subset=6000),
        r"profiles.smoke.datasets.mnist.subset must be a number of images per class, an integer in \[1, 5,421\] "
        r"\(the smallest class of mnist's train split has 5,421\), got int 6000. Lower it, or leave subset out"),
    "test subset beyond the test split": (
        lambda g: smoke(g)["datasets"]["main"].update(test_subset=1001),
        r"profiles.smoke.datasets.main.test_subset must be .* \[1, 1,000\] .*fashion-mnist's test split"),
    "batch beyond the training split": (
        lambda g: student(g, batch_size=101),
        r"profiles.smoke.recipes.student.batch_size: 101 is more than the 100 training images of dataset role "
        r"'main' \(fashion-mnist: subset 10 per class x 10 classes\).*Use a batch_size of at most 100"),
    # stated bounds
    "learning rate": (lambda g: student(g, lr=1e3), r"profiles.smoke.recipes.student.lr: 1000.0 is more than 10"),
    "momentum of 1": (lambda g: student(g, momentum=1.0), r"recipes.student.momentum: 1.0 must be below 1"),
    "weight decay": (lambda g: student(g, weight_decay=0.5), r"recipes.student.weight_decay: 0.5 is more than 0.1"),
    "lr x weight decay": (lambda g: student(g, lr=10.0, weight_decay=0.1),
                          r"recipes.student: lr 10.0 x weight_decay 0.1 = 1 must be below 1"),
    "huge temperature": (lambda g: E(g)["E7"].update(temperatures=[1, 2, 1e9]),
                         r"experiments.E7.temperatures: temperature 1000000000.0 is outside \[0.01, 1000\]"),
    "tiny default temperature": (lambda g: g["defaults"].update(temperature=1e-6),
                                 r"defaults: temperature 1e-06 is outside \[0.01, 1000\]"),
    "boolean CutMix prob": (lambda g: E(g)["E4"].update(student_regimes=["cutmix(prob=true)"]),
                            r"experiments.E4.student_regimes: cutmix: prob must be in \[0, 1\] \(a number"),
    "label smoothing 1": (lambda g: smoke(g)["recipes"]["teacher"].update(label_smoothing=1.0),
                          r"recipes.teacher: label_smoothing must be in \[0, 1\)"),
    "warmup beyond the run": (lambda g: student(g, warmup=1.5), r"recipes.student: warmup must be a fraction in \(0, 1\)"),
}


@pytest.mark.parametrize("case", sorted(BOUNDED))
def test_out_of_bounds_values_are_refused_at_plan_time_before_any_folder(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    edit, needle = BOUNDED[case]
    path = grid_with(tmp_path, edit)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=needle):
        load_grid(path)
    capsys.readouterr()
    assert grid_main(["--profile", "smoke", "--grid", str(path), "--plan"]) == 2
    err = capsys.readouterr()
    assert err.out == "" and err.err.startswith("error: ") and "grid.yaml" in err.err
    assert set(tmp_path.rglob("*")) == before


def test_values_at_their_bounds_are_accepted(tmp_path):
    def at_bounds(g):
        E(g)["E4"].update(student_regimes=["flipcrop(padding=27)", "cutout(length=28)"])
        student(g, batch_size=100, lr=10.0, weight_decay=0.099, momentum=0.99)
        E(g)["E7"].update(temperatures=[0.01, 1000])
        smoke(g)["datasets"]["mnist"].update(subset=5421, test_subset=892)

    load_grid(grid_with(tmp_path, at_bounds))
    load_grid()  # and the shipped grid


def test_the_loader_refuses_a_padding_beyond_the_image_too():
    from kdlib.data.loader import DeviceLoader

    x, y = np.zeros((4, 8, 8, 1), np.uint8), np.arange(4)
    with pytest.raises(ValueError, match="flipcrop: padding 8 is not less than the 8-px side"):
        DeviceLoader(x, y, 2, "flipcrop(padding=8)", mean=(0.5,), std=(0.5,))
    DeviceLoader(x, y, 2, "flipcrop(padding=7)+cutout(length=8)", mean=(0.5,), std=(0.5,))


def test_a_records_archive_of_too_many_entries_is_refused_while_listing(tmp_path):
    from kdlib.runs.compact import RecordError
    from kdlib.runs.admit import _safe_extract

    header = tarfile.TarInfo("r/x").tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")  # an empty file
    (tmp_path / "records.tar.gz").write_bytes(gzip.compress(header * 2_001 + bytes(1024)))
    assert (tmp_path / "records.tar.gz").stat().st_size < 64 << 10  # 1 MB of headers in a small gzip
    # the default cap is 200,000 entries (100 MB of headers); 2,000 here spares listing that many
    with pytest.raises(RecordError, match="holds more than 2,000 entries; not an archive of records"):
        _safe_extract(tmp_path / "records.tar.gz", tmp_path / "out", max_entries=2_000)
    assert not (tmp_path / "out").exists()


def test_a_record_npz_whose_header_claims_a_huge_array_is_refused_on_import(tmp_path):
    from kdlib.runs.compact import RecordError
    from kdlib.runs.candidates import _load_npz

    npz_with(tmp_path / "p.npz", {"test_logits": npy_claiming((10**9, 10), dtype="<f2")})
    with peak_memory() as mem, pytest.raises(RecordError, match=r"predictions.npz is not a readable .npz.*test_logits"
                                                                r".npy.*20,000,000,000 bytes, more than the cap"):
        _load_npz((tmp_path / "p.npz").read_bytes(), tmp_path / "predictions.npz")
    assert mem.peak < 1 << 20
