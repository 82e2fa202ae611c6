"""Write a tiny Fashion-MNIST in the real IDX format: the first N images of every class, in file order.

    python scripts/make_idx_fixture.py [SOURCE] [DEST] [--train 30] [--test 20]

SOURCE defaults to Debian's /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist),
DEST to tests/fixtures/data/fashion-mnist. The four .gz files are written with a zero gzip timestamp, so
the output is byte-for-byte reproducible, and their payload SHA-256 digests (kdlib.data.registry.FIXTURE_CHECKSUMS,
printed here) let the loader verify the fixture like the official files. The smoke profile (10 train and
10 test images per class) runs on it when Debian's copy is absent: the tests never skip for lack of data.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import struct
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"error: {path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_gz(path: Path, payload: bytes):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(payload)
    path.write_bytes(buf.getvalue())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", nargs="?", default="/usr/share/datasets/fashion-mnist", help="folder of the official files")
    p.add_argument("dest", nargs="?", default=str(REPO / "tests" / "fixtures" / "data" / "fashion-mnist"),
                   help="folder to write")
    p.add_argument("--train", type=int, default=30, help="training images per class")
    p.add_argument("--test", type=int, default=20, help="test images per class")
    args = p.parse_args(argv)
    src, dest = Path(args.source), Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", args.train), ("test", args.test)):
        img_name, lab_name = FILES[split]
        try:
            images, labels = read_idx(src / f"{img_name}.gz"), read_idx(src / f"{lab_name}.gz")
        except FileNotFoundError as err:
            raise SystemExit(f"error: {err.filename} missing; apt-get install dataset-fashion-mnist or pass SOURCE")
        rows = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))
        for name, array in ((img_name, images[rows]), (lab_name, labels[rows])):
            payload = idx_bytes(np.ascontiguousarray(array))
            write_gz(dest / f"{name}.gz", payload)
            print(f'    "{name}": "{hashlib.sha256(payload).hexdigest()}",  # {array.shape}')


if __name__ == "__main__":
    main()
