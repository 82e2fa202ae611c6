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


# What a user's checkout holds between runs: the tests never read or write these (tmp_path, KDLIB_RUNS, KDLIB_CACHE).
CHECKOUT_STATE = ("runs", "book/runs", "book/chapters", "book/part1", "book/part2", "_build", "data/cache", "logs",
                  ".snakemake")


def _signature(depth: int = 3) -> dict:
    """Every folder (to ``depth`` levels) of the checkout's state paths with its entries' names and mtimes."""
    sig = {}
    for rel in CHECKOUT_STATE:
        top = REPO / rel
        if not top.exists():
            sig[rel] = None
            continue
        for folder, dirs, files in os.walk(top):
            level = len(Path(folder).relative_to(top).parts)
            if level >= depth:
                dirs[:] = []
            entries = sorted(dirs + files)
            sig[str(Path(folder).relative_to(REPO))] = [(e, os.lstat(os.path.join(folder, e)).st_mtime_ns)
                                                        for e in entries]
    return sig


@pytest.fixture(scope="session", autouse=True)
def _hermetic_session(tmp_path_factory):
    """The run store and the decoded-dataset caches of the test session live in temporary folders, never in
    the checkout's runs/ or data/cache; at the end, the checkout's state paths must be as they were."""
    saved = {k: os.environ.get(k) for k in ("KDLIB_CACHE", "KDLIB_RUNS")}
    os.environ["KDLIB_CACHE"] = str(tmp_path_factory.mktemp("kdlib-cache"))
    os.environ["KDLIB_RUNS"] = str(tmp_path_factory.mktemp("kdlib-runs"))
    before = _signature()
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    after = _signature()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"the tests changed the checkout's {changed}; use tmp_path, $KDLIB_RUNS, $KDLIB_CACHE"


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


def grid_with(tmp_path, edit):
    """A copy of the project's grid.yaml in ``tmp_path``, changed by ``edit(grid_dict)``."""
    import yaml

    from kdlib.base.paths import GRID_PATH

    grid = yaml.safe_load(GRID_PATH.read_text())
    edit(grid)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path
