"""The README's commands as a user runs them: system packages, a fresh clone, jupytext, papermill."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PY = sys.executable
BIN = Path(PY).parent


def _bin_without_apt(tmp_path):
    """A PATH with the few tools the script uses, and no apt-get, sudo or chromium."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("bash", "id", "env"):
        os.symlink(shutil.which(tool), bin_ / tool)
    return str(bin_)


def test_system_deps_without_apt_is_one_line_naming_the_fix(tmp_path):
    env = {"PATH": _bin_without_apt(tmp_path), "FASHION_MNIST_DIR": str(tmp_path / "none"),
           "CHROMIUM": str(tmp_path / "none" / "chromium")}
    res = subprocess.run(["bash", str(REPO / "scripts" / "system_deps.sh"), "test"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: missing system packages dataset-fashion-mnist chromium")
    assert "fix: sudo apt-get install -y dataset-fashion-mnist chromium" in lines[0]
    res = subprocess.run(["bash", str(REPO / "scripts" / "system_deps.sh"), "test"], capture_output=True, text=True,
                         env={**env, "SYSTEM_DEPS": "0"}, timeout=60)
    assert res.returncode == 0 and res.stderr == ""


def test_system_deps_nothing_missing_is_silent(tmp_path):
    fashion = tmp_path / "fm"
    fashion.mkdir()
    (fashion / "train-images-idx3-ubyte.gz").write_bytes(b"")
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    res = subprocess.run(["bash", str(REPO / "scripts" / "system_deps.sh"), "test"], capture_output=True, text=True,
                         env={"PATH": _bin_without_apt(tmp_path), "FASHION_MNIST_DIR": str(fashion),
                              "CHROMIUM": str(chromium)}, timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr


def test_makefile_and_ci_use_the_system_deps_and_the_readme_command():
    make = (REPO / "Makefile").read_text()
    for target in ("test", "book"):
        body = make.split(f"\n{target}: ", 1)[1].split("\n\n", 1)[0]
        assert f"scripts/system_deps.sh {target}" in body, target
    ci = (REPO / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci
    assert "make test" in (REPO / "README.md").read_text()
