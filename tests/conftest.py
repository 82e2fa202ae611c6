import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KDLIB_SHARED", REPO.parent / "shared"))
CIFAR_JPEG = SHARED / "datasets" / "cifar10-jpeg"
CIFAR10H = SHARED / "datasets" / "cifar10h"
FASHION = Path("/usr/share/datasets/fashion-mnist")

needs_cifar = pytest.mark.skipif(not (CIFAR_JPEG / "test.tar.gz").is_file(),
                                 reason=f"CIFAR-10 JPEG copy not at {CIFAR_JPEG}")
needs_cifar10h = pytest.mark.skipif(not (CIFAR10H / "cifar10h-probs.npy").is_file(),
                                    reason=f"CIFAR-10H not at {CIFAR10H}")
needs_fashion = pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                                   reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Decoded-dataset caches of the test session live in a temporary folder, not in ./data."""
    old = os.environ.get("KDLIB_CACHE")
    os.environ["KDLIB_CACHE"] = str(tmp_path_factory.mktemp("kdlib-cache"))
    yield
    if old is None:
        os.environ.pop("KDLIB_CACHE", None)
    else:
        os.environ["KDLIB_CACHE"] = old
