import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KDLIB_SHARED", REPO.parent / "shared"))
CIFAR_JPEG = SHARED / "datasets" / "cifar10-jpeg"
CIFAR10H = SHARED / "datasets" / "cifar10h"
# Fashion-MNIST: Debian's copy (apt-get install dataset-fashion-mnist), else the committed tiny fixture in the
# same IDX format (scripts/make_idx_fixture.py), on which the smoke profile runs: the end-to-end tests never
# skip for lack of data. KDLIB_TEST_FIXTURE=1 uses the fixture even where Debian's copy is installed.
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FIXTURE_DATA = REPO / "tests" / "fixtures" / "data"  # a data root: its fashion-mnist/ holds the IDX files
FIXTURE_FASHION = FIXTURE_DATA / "fashion-mnist"
HAVE_DEBIAN_FASHION = (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file()
USE_FIXTURE = os.environ.get("KDLIB_TEST_FIXTURE") == "1" or not HAVE_DEBIAN_FASHION
FASHION = FIXTURE_FASHION if USE_FIXTURE else DEBIAN_FASHION
if USE_FIXTURE:  # the data root is searched first, by this process and every notebook or grid it starts
    os.environ["KDLIB_DATA"] = str(FIXTURE_DATA)

needs_cifar = pytest.mark.skipif(not (CIFAR_JPEG / "test.tar.gz").is_file(),
                                 reason=f"CIFAR-10 JPEG copy not at {CIFAR_JPEG}")
needs_cifar10h = pytest.mark.skipif(not (CIFAR10H / "cifar10h-probs.npy").is_file(),
                                    reason=f"CIFAR-10H not at {CIFAR10H}")
# only for tests of the full official files (their checksums, their reader); the pipeline runs on FASHION
needs_real_fashion = pytest.mark.skipif(USE_FIXTURE, reason="Debian's Fashion-MNIST not installed (apt-get install "
                                        "dataset-fashion-mnist) or KDLIB_TEST_FIXTURE=1")


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


def fresh_checkout(dest: Path) -> Path:
    """The repository as a fresh clone would have it (tracked and new, not ignored, files of this working
    tree, committed in a new git repository), with this interpreter's environment as its .venv."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fresh"]):
        subprocess.run(git + cmd, cwd=dest, check=True, capture_output=True)
    os.symlink(Path(sys.prefix), dest / ".venv")
    return dest
