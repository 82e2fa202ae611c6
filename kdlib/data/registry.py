"""What the project knows about each dataset: names, classes, folders, checksums, sizes, URLs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .formats import DataError

__all__ = ["Dataset", "DatasetNotFoundError", "DATASETS", "NORMALIZATION", "CLASSES"]


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


CLASSES = {
    "cifar10": CIFAR10_CLASSES,
    "cinic10": CIFAR10_CLASSES,
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
}


DATASETS = {
    "cifar10": ("train", "test"),
    "cinic10": ("train", "valid", "test", "test-imagenet"),
    "mnist": ("train", "test"),
    "fashion-mnist": ("train", "test"),
}


_ALIASES = {"cifar-10": "cifar10", "cinic-10": "cinic10", "fashion_mnist": "fashion-mnist",
            "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist"}


# Sub-folders of a data root that may hold a dataset.
_FOLDERS = {
    "cifar10": ["", "cifar10", "cifar-10", "cifar10-jpeg"],
    "cinic10": ["", "cinic10", "CINIC-10", "cinic-10"],
    "mnist": ["", "mnist", "MNIST", "MNIST/raw"],
    "fashion-mnist": ["", "fashion-mnist", "FashionMNIST", "FashionMNIST/raw"],
}


SYSTEM_DIRS = {
    "mnist": [Path("/usr/share/datasets/mnist")],
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
    "cifar10": [],
    "cinic10": [],
}


SYSTEM_FIX = {"fashion-mnist": "apt-get install dataset-fashion-mnist"}


# Per-channel mean and std used to normalise, by dataset (recorded in every run).
# CIFAR-10: the paper's code. CINIC-10: its authors' statistics (the paper evaluated CINIC with
# them); kdlib evaluates CINIC with the *training* set's statistics, see the book's Methods.
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)),
    "cinic10": ((0.47889522, 0.47227842, 0.43047404), (0.24205776, 0.23828046, 0.25874835)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
}


# Known checksums: (dataset, file name) -> accepted (algorithm, hex digest, over) with
# over = "file" or "payload" (the decompressed content of a .gz, or a raw file's own bytes).
_FASHION_PAYLOAD = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


_FASHION_GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}


_MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}


KNOWN_CHECKSUMS: dict[tuple[str, str], list[tuple[str, str, str]]] = {
    ("cifar10", "cifar-10-python.tar.gz"): [("md5", "c58f30108f718f92721af3b95e74349a", "file")],
    ("cifar10", "data_batch_1"): [("md5", "c99cafc152244af753f735de768cd75f", "file")],
    ("cifar10", "data_batch_2"): [("md5", "d4bba439e000b95fd0a9bffe97cbabec", "file")],
    ("cifar10", "data_batch_3"): [("md5", "54ebc095f3ab1f0389bbae665268c751", "file")],
    ("cifar10", "data_batch_4"): [("md5", "634d18415352ddfa80567beed471001a", "file")],
    ("cifar10", "data_batch_5"): [("md5", "482c414d41f54cd18b22e5b47cb7c3cb", "file")],
    ("cifar10", "test_batch"): [("md5", "40351d587109b95175f43aff81a1287e", "file")],
    # the JPEG copy of CIFAR-10 (ImageFolder tarballs train.tar.gz/test.tar.gz, with test_index_to_file.txt)
    ("cifar10", "train.tar.gz"): [("sha256", "559eda2880952d38727691d69745ffa58c35254d328e5ebadda3d246a18d8575", "file")],
    ("cifar10", "test.tar.gz"): [("sha256", "ef77e08e6730c2b5ece0bb191cc8e3e354ad39462653a4b481b675c8e70a300a", "file")],
    ("cifar10h", "cifar10h-probs.npy"): [("sha256", "436ae98620e00073f9d08585ac870573b588853e7af9f54eb1647408114af77d", "file")],
    ("cifar10h", "cifar10h-counts.npy"): [("sha256", "9b36b4550349af56c79083356312eb4af856cc5fd3caf1f669d40b9d0bbb69ff", "file")],
}


# The committed test fixture tests/fixtures/data/fashion-mnist/ (scripts/make_idx_fixture.py: the first 30
# training and 20 test images of every class of the official files, same IDX format and names), on which the
# smoke profile runs where Debian's copy is absent. Its payload digests are accepted beside the official ones.
FIXTURE_CHECKSUMS = {
    "train-images-idx3-ubyte": "ec49a9be4334b259595f886d8da28fddd192461655e707ee9f017511d29774bd",
    "train-labels-idx1-ubyte": "e6c106319a238f9eea628d779b43a69c8bd6d080f473c4da1983cdfb6fe3c504",
    "t10k-images-idx3-ubyte": "c5778dde4e96eeb34657888930a98f527ac6b0cb35e9e969ba53f01dfce868bd",
    "t10k-labels-idx1-ubyte": "3bf96d4b7566f51d8726eb6088e70eb796c98349a6135181dddfcc5bc590cf72",
}


for _stem in _MNIST_GZ_MD5:
    KNOWN_CHECKSUMS[("mnist", _stem + ".gz")] = [("md5", _MNIST_GZ_MD5[_stem], "file")]
    KNOWN_CHECKSUMS[("fashion-mnist", _stem + ".gz")] = [
        ("md5", _FASHION_GZ_MD5[_stem], "file"), ("sha256", _FASHION_PAYLOAD[_stem], "payload"),
        ("sha256", FIXTURE_CHECKSUMS[_stem], "payload")]
    KNOWN_CHECKSUMS[("fashion-mnist", _stem)] = [("sha256", _FASHION_PAYLOAD[_stem], "payload"),
                                                 ("sha256", FIXTURE_CHECKSUMS[_stem], "payload")]


_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


DOWNLOADS = {
    "cifar10": [("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz")],
    "mnist": [(f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}.gz", f + ".gz")
              for pair in _MNIST_FILES.values() for f in pair],
    "fashion-mnist": [(f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{f}.gz", f + ".gz")
                      for pair in _MNIST_FILES.values() for f in pair],
    "cinic10": [("https://datashare.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz", "CINIC-10.tar.gz")],
    "cifar10h": [("https://raw.githubusercontent.com/jcpeterson/cifar-10h/master/data/cifar10h-probs.npy",
                  "cifar10h-probs.npy"),
                 ("https://raw.githubusercontent.com/jcpeterson/cifar-10h/master/data/cifar10h-counts.npy",
                  "cifar10h-counts.npy")],
}


class DatasetNotFoundError(DataError, FileNotFoundError):
    """No copy of the dataset was found; the message lists where the resolver looked."""


@dataclass
class Dataset:
    """A decoded split: ``images`` uint8 (N, H, W, C), ``labels`` int64 (N,).

    ``order`` is ``"original"`` when rows follow the dataset's canonical order (needed to join
    CIFAR-10H), ``"folder"`` for an ImageFolder copy without an index map. ``indices`` are the rows'
    positions in the full split (a subset keeps them), ``source`` says which files were read
    and ``checksum`` is the cache key computed from them.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: list
    source: str
    checksum: str
    order: str = "original"
    indices: np.ndarray | None = None
    files: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.indices is None:
            self.indices = np.arange(len(self.labels), dtype=np.int64)

    def __len__(self):
        return int(self.labels.shape[0])

    def __repr__(self):
        return (f"Dataset({self.name!r}, {self.split!r}, n={len(self)}, shape={tuple(self.images.shape[1:])}, "
                f"order={self.order!r}, source={self.source!r})")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def provenance(self) -> dict:
        return {"dataset": self.name, "split": self.split, "n": len(self), "source": self.source,
                "checksum": self.checksum, "order": self.order, **{k: v for k, v in self.meta.items()
                                                                     if k != "uncertain_indices"}}


# --------------------------------------------------------------------------- resolver
def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, got {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return key


# image shape (H, W, C) of every dataset: a cache or a copy of another size is not that dataset
IMAGE_SHAPES = {"cifar10": (32, 32, 3), "cinic10": (32, 32, 3), "mnist": (28, 28, 1), "fashion-mnist": (28, 28, 1)}


# images of every official split, and of its smallest class (MNIST's classes differ in size; test-imagenet
# is CINIC-10's 7,000 ImageNet images per class before exact duplicates are dropped): the bounds on subsets
# and batch sizes that kdlib.runs.gridcheck derives from the data
SPLIT_SIZES = {
    "cifar10": {"train": (50_000, 5_000), "test": (10_000, 1_000)},
    "cinic10": {"train": (90_000, 9_000), "valid": (90_000, 9_000), "test": (90_000, 9_000),
                "test-imagenet": (70_000, 7_000)},
    "mnist": {"train": (60_000, 5_421), "test": (10_000, 892)},
    "fashion-mnist": {"train": (60_000, 6_000), "test": (10_000, 1_000)},
}
