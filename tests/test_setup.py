"""The README's commands as a user runs them: system packages, a fresh clone, jupytext, papermill."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, fresh_checkout

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


def readme_block(heading: str) -> list[str]:
    """The commands of the first ```bash block after ``heading`` in the README (continuations joined)."""
    text = (REPO / "README.md").read_text().split(heading, 1)[1]
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


def test_jupytext_sync_leaves_a_fresh_clone_clean(tmp_path):
    root = fresh_checkout(tmp_path / "clone")
    notebooks = sorted(str(p.relative_to(root)) for p in (root / "notebooks").glob("*.py"))
    res = subprocess.run([str(BIN / "jupytext"), "--sync", *notebooks], cwd=root, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    assert status == "", status


def test_readme_papermill_recipe_runs_as_written_in_a_fresh_clone(tmp_path):
    """The README's "Re-executing one chapter" commands, verbatim but for the smoke profile (seconds)."""
    import nbformat

    commands = readme_block("### Re-executing one chapter with other parameters")
    assert len(commands) == 2 and "-p temperature 4.0" in commands[0] and "--profile quick" in commands[0]
    root = fresh_checkout(tmp_path / "clone")
    env = {**os.environ, "KDLIB_RUNS": str(tmp_path / "runs")}
    for cmd in commands:
        res = subprocess.run(["bash", "-c", cmd.replace("--profile quick", "--profile smoke")], cwd=root, env=env,
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{cmd}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    nb = nbformat.read(root / "book" / "runs" / "part2" / "students-T4.ipynb", as_version=4)
    injected = [c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "temperature = 4.0" in injected[0]
    assert (root / "_build" / "html" / "book" / "runs" / "part2" / "students-T4.html").is_file()


def test_one_default_profile_in_every_notebook_and_command():
    """quick: the command line's default, the Snakefile's Part II, every notebook's parameters cell (the
    conclusion's `profile` is Part I's, paper, like the Snakefile's part1; device-run is for GPUs: paper)."""
    import jupytext

    from kdlib.base.cli import DEFAULT_PROFILE

    assert DEFAULT_PROFILE == "quick"
    for path in sorted((REPO / "notebooks").glob("*.py")):
        nb = jupytext.read(path)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        values = {}
        exec(cell.source, {}, values)  # noqa: S102 - our own parameters cell: constants only
        key = "profile2" if path.stem == "conclusion" else "profile"
        assert values[key] == DEFAULT_PROFILE, (path.name, values[key])
    snake = (REPO / "Snakefile").read_text()
    assert "DEFAULT_PROFILE" in snake and (REPO / "Makefile").read_text().count("PROFILE ?= quick") == 1


def test_no_reference_to_files_outside_the_repository():
    """A user has only the checkout: no ../shared (or other ../) path in the code, notebooks or docs."""
    import re

    roots = ["kdlib", "notebooks", "scripts", "book"]
    files = [REPO / "README.md", REPO / "Snakefile", REPO / "Makefile", REPO / "grid.yaml"]
    files += [p for r in roots for p in (REPO / r).rglob("*") if p.suffix in (".py", ".md", ".sh", ".yml", ".yaml")
              and "_assets" not in p.parts and "runs" not in p.parts]
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not re.search(r"\.\./shared|/work/", line), f"{path.relative_to(REPO)}:{n}: {line.strip()}"
