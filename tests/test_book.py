"""The smoke book, built from scratch in a scratch copy of the repository, opened page by page in
Debian's Chromium through Playwright: no network request, no unexpected console error, every
image decoded, plotly drawn, math typeset, widgets rendered, glued numbers present."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, needs_fashion

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_browser = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

# console messages known to be harmless (documented in README): sphinx-thebe declares a constant twice;
# the theme complains about its mode on file:// pages.
ALLOWED_CONSOLE = ("THEBE_JS_URL", "invalid theme mode", "Failed to load resource: net::ERR_FILE_NOT_FOUND")


def _copy_repo(dst: Path):
    """The committed sources only: no venv, run store, build, data, executed notebooks or assets."""
    top = {".venv", "runs", "_build", ".snakemake", ".git", "data", ".pytest_cache"}

    def ignore(folder, names):
        rel = Path(folder).resolve().relative_to(REPO)
        skip = {n for n in names if n == "__pycache__"}
        if rel == Path("."):
            skip |= top & set(names)
        if rel == Path("book/runs"):
            skip |= {n for n in names if n != "index.md"}
        if rel == Path("book/chapters"):
            skip |= set(names)
        if rel == Path("book/_assets"):
            skip |= {n for n in names if n != "ipywidgets"}
        return skip

    shutil.copytree(REPO, dst, ignore=ignore)
    (dst / "book" / "chapters").mkdir(exist_ok=True)


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    root = tmp_path_factory.mktemp("book") / "repo"
    _copy_repo(root)
    env = {**os.environ, "PYTHONPATH": str(root), "KDLIB_RUNS": str(root / "runs"),
           "PY": sys.executable}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    steps = [
        [str(Path(venv_bin) / "snakemake"), "--cores", str(os.cpu_count() or 1), "--config", "profile=smoke",
         "threads=1", "--quiet", "rules"],
        ["bash", "scripts/book_assets.sh"],
        [str(Path(venv_bin) / "jupyter-book"), "build", ".", "--warningiserror", "--keep-going", "--quiet"],
    ]
    if (REPO / "book" / "_assets" / ".vendored").exists():  # reuse this checkout's vendored JS
        shutil.copytree(REPO / "book" / "_assets", root / "book" / "_assets", dirs_exist_ok=True)
    for cmd in steps:
        res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=1500)
        assert res.returncode == 0, f"{cmd[0]} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return root / "_build" / "html"


@needs_fashion
@needs_browser
def test_every_page_of_the_smoke_book_in_chromium(smoke_book):
    from playwright.sync_api import sync_playwright

    pages = sorted(p for p in smoke_book.rglob("*.html") if "_static" not in p.parts and p.name not in
                   ("search.html", "genindex.html"))
    assert len(pages) > 10
    seen = {"plotly": False, "math": False, "widgets": False, "glue": False}
    failures = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for path in pages:
            page = browser.new_page()
            external, errors = [], []

            def route(r, external=external):
                url = r.request.url
                if url.startswith(("file:", "data:", "blob:")):
                    return r.continue_()
                external.append(url)
                return r.abort()

            page.route("**/*", route)
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(400)
            rel = path.relative_to(smoke_book)
            if external:
                failures.append(f"{rel}: external requests {external[:3]}")
            bad = [e for e in errors if not any(a in e for a in ALLOWED_CONSOLE)]
            if bad:
                failures.append(f"{rel}: console errors {bad[:3]}")
            broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                                   ".map(i => i.src.slice(0, 80))")
            if broken:
                failures.append(f"{rel}: undecoded images {broken[:3]}")
            if page.locator(".plotly-graph-div .main-svg").count():
                seen["plotly"] = True
            if page.locator("mjx-container").count():
                seen["math"] = True
            if page.locator(".jupyter-widgets, .widget-dropdown").count():
                seen["widgets"] = True
            if "results" in path.name:
                text = page.inner_text("body")
                if "In one line each: C1" in text and any(v in text.split("In one line each:")[1][:300] for v in
                                                           ("reproduced", "inconclusive", "mixed", "not tested")):
                    seen["glue"] = True
            page.close()
        browser.close()
    assert not failures, "\n".join(failures)
    assert seen == {"plotly": True, "math": True, "widgets": True, "glue": True}, seen


# every table of the paper and the chapter (built page) that sets ours beside it
TABLE_PAGES = {1: "results", 2: "experiments", 3: "experiments", 4: "dichotomy", 5: "dichotomy",
               6: "experiments", 7: "experiments", 8: "experiments", 9: "experiments"}


@needs_fashion
@needs_browser
def test_every_table_of_the_paper_has_its_counterpart(smoke_book):
    from kdlib.results import paper_tables

    assert {int(k[5:]) for k in paper_tables() if k.startswith("table")} == set(TABLE_PAGES)
    for n, page in TABLE_PAGES.items():
        html = (smoke_book / "book" / "chapters" / f"{page}.html").read_text()
        assert f"Table {n}" in html, (n, page)
        assert "(paper)" in html  # the paper's values sit beside ours
