"""The smoke book, built from scratch in a scratch copy of the repository, opened page by page in
Debian's Chromium through Playwright: no network request, no unexpected console error, every
image decoded, plotly drawn, math typeset, widgets rendered, glued numbers present."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_browser = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

# console messages known to be harmless (documented in README): sphinx-thebe declares a constant twice;
# the theme complains about its mode on file:// pages.
ALLOWED_CONSOLE = ("THEBE_JS_URL", "invalid theme mode", "Failed to load resource: net::ERR_FILE_NOT_FOUND")
# absolute paths of build machines that must never reach a page
ABSOLUTE = ("/work/", "/tmp/", "/root/", "/home/", str(REPO.parent) + "/")


def _copy_repo(dst: Path):
    """The committed sources only: no venv, run store, build, data, executed notebooks or assets."""
    top = {".venv", "runs", "_build", ".snakemake", ".git", "data", ".pytest_cache", "logs"}

    def ignore(folder, names):
        rel = Path(folder).resolve().relative_to(REPO)
        skip = {n for n in names if n == "__pycache__"}
        if rel == Path("."):
            skip |= top & set(names)
        if rel == Path("book/runs"):
            skip |= {n for n in names if n != "index.md"}
        if rel in (Path("book/chapters"), Path("book/part1"), Path("book/part2")):
            skip |= set(names)
        if rel == Path("book/_assets"):  # vendored JavaScript is not committed; the style sheet is
            skip |= {n for n in names if n not in ("ipywidgets", "kd.css")}
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
        # Part I from the committed records (paper profile, nothing trained), Part II the smoke profile
        [str(Path(venv_bin) / "snakemake"), "--cores", str(os.cpu_count() or 1), "--config", "part1=paper",
         "part2=smoke", "threads=1", "--quiet", "rules"],
        ["bash", "scripts/book_assets.sh"],
        [str(Path(venv_bin) / "jupyter-book"), "build", ".", "--warningiserror", "--keep-going", "--quiet"],
    ]
    if (REPO / "book" / "_assets" / ".vendored").exists():  # reuse this checkout's vendored JS
        shutil.copytree(REPO / "book" / "_assets", root / "book" / "_assets", dirs_exist_ok=True)
    for cmd in steps:
        res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=1500)
        assert res.returncode == 0, f"{cmd[0]} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return root / "_build" / "html"


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
            if page.locator(".jupyter-widgets, .widget-dropdown, .widget-tab").count():
                seen["widgets"] = True
            text = page.inner_text("body")
            for marker in ABSOLUTE:
                if marker in text or marker in path.read_text():
                    failures.append(f"{rel}: absolute path {marker!r} in the page")
            if rel == Path("book/intro.html"):
                if "What was found" in text and any(v in text for v in ("reproduced", "inconclusive", "not tested")):
                    seen["glue"] = True
            page.close()
        browser.close()
    assert not failures, "\n".join(failures)
    assert seen == {"plotly": True, "math": True, "widgets": True, "glue": True}, seen


# every table of the paper and the chapter (built page) that sets ours beside it
TABLE_PAGES = {1: "results", 2: "experiments", 3: "experiments", 4: "dichotomy", 5: "dichotomy",
               6: "experiments", 7: "experiments", 8: "experiments", 9: "experiments"}


@needs_browser
def test_every_table_of_the_paper_has_its_counterpart(smoke_book):
    from kdlib.book.rows import paper_tables

    assert {int(k[5:]) for k in paper_tables() if k.startswith("table")} == set(TABLE_PAGES)
    for n, page in TABLE_PAGES.items():
        for part in ("part1", "part2"):
            html = (smoke_book / "book" / part / f"{page}.html").read_text()
            assert f"Table {n}" in html, (n, page, part)
            assert "(paper)" in html  # the paper's values sit beside ours


def _content_overflow(page):
    """Tables, figures and plots wider than the article column (a scroll box counts as overflow)."""
    return page.evaluate("""() => {
      const col = document.querySelector('article.bd-article') || document.querySelector('main');
      if (!col) return ['no article column'];
      const right = col.getBoundingClientRect().right + 2;
      const out = [];
      for (const el of col.querySelectorAll('table, img, .plotly-graph-div, .kd-explorer, .widget-tab')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0) continue;
        if (r.right > right) out.push(el.tagName + ' ' + (el.className || '') + ' ends at ' + Math.round(r.right)
                                      + ' > ' + Math.round(right));
        let p = el.parentElement;
        while (p && p !== col) {
          if (p.scrollWidth > p.clientWidth + 2 && getComputedStyle(p).overflowX !== 'visible') {
            out.push(el.tagName + ' scrolls inside ' + p.className + ' (' + p.scrollWidth + ' > ' + p.clientWidth + ')');
            break;
          }
          p = p.parentElement;
        }
      }
      return out;
    }""")


@needs_browser
def test_reader_facing_layout(smoke_book):
    """At 1000 and 1400 px: nothing overflows its column; the explorer's hovered image is on top; the front
    page links every chapter; run reports have distinct titles."""
    from playwright.sync_api import sync_playwright

    chapters = sorted(p for part in ("part1", "part2") for p in (smoke_book / "book" / part).glob("*.html"))
    chapters.append(smoke_book / "book" / "chapters" / "audit.html")
    intro = (smoke_book / "book" / "intro.html").read_text()
    for ch in chapters:
        href = ch.relative_to(smoke_book / "book").as_posix()
        assert f'href="{href}' in intro or f'href="../{href}' in intro or href in intro, f"front page lacks {href}"
    reports = sorted((smoke_book / "book" / "runs").rglob("*.html"))
    # numbers in the chapters' tables link to the run reports that produced them, and every link resolves
    import re

    n_links = 0
    for ch in chapters:
        for href in re.findall(r'href="(\.\./runs/[^"#]+)"', ch.read_text()):
            n_links += 1
            assert (ch.parent / href).resolve().is_file(), f"{ch.name} links to a missing report {href}"
    assert n_links > 20
    titles = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        failures = []
        for width in (1000, 1400):
            page = browser.new_page(viewport={"width": width, "height": 900})
            for path in chapters:
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                page.wait_for_timeout(300)
                for problem in _content_overflow(page):
                    failures.append(f"{width}px {path.relative_to(smoke_book)}: {problem}")
            explorer = smoke_book / "book" / "part2" / "explorer.html"
            page.goto(explorer.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(800)
            img = page.locator("img[id$='-img']").first
            assert img.count(), "the explorer has no hover image"
            img.evaluate("e => e.scrollIntoView({block: 'center'})")  # not under the sticky header
            page.wait_for_timeout(200)
            on_top = page.evaluate("""() => {
              const img = document.querySelector("img[id$='-img']");
              const r = img.getBoundingClientRect();
              const el = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
              return el === img;
            }""")
            if not on_top:
                failures.append(f"{width}px: the explorer's image is covered at its centre")
            page.close()
        # glued values are set like the text around them (MyST-NB's own style makes them bold)
        page = browser.new_page()
        page.goto((smoke_book / "book" / "intro.html").as_uri())
        weights = page.evaluate("""() => Array.from(document.querySelectorAll('td span.pasted-text'))
                                   .map(e => getComputedStyle(e).fontWeight)""")
        if not weights or set(weights) != {"400"}:
            failures.append(f"front page: glued table cells have font weights {sorted(set(weights))}, not 400")
        browser.close()
    # the titles as the browser shows them: the pages set none from JavaScript, so each file's <title> element
    import html

    for path in reports:
        found = re.search(r"<title>(.*?)</title>", path.read_text(), re.S)
        titles.append(html.unescape(" ".join(found.group(1).split())) if found else "")
    assert not failures, "\n".join(failures[:30])
    assert len(titles) > 10 and len(set(titles)) == len(titles), [t for t in titles if titles.count(t) > 1]


FILL = re.compile(r"python -m kdlib (device-run|grid) --profile ([\w-]+)((?: --only(?: E\d+)+)?) --seeds((?: \d+)+)")


def test_no_page_prints_a_fill_command_that_cannot_fill(smoke_book):
    """Every fill command printed anywhere in the book names, for each of its seeds, runs that a command can
    make (kdlib.book.fill.fill_plan on the book's own store): none points at a seed whose gaps can never be
    filled (students of committed records that cannot teach them)."""
    from kdlib.runs.plan import load_grid
    from kdlib.book.fill import fill_plan
    from kdlib.runs.store import RunStore

    root = smoke_book.parent.parent
    grid = load_grid(root / "grid.yaml")
    found = 0
    for page in smoke_book.rglob("*.html"):
        if "_static" in page.parts:
            continue
        text = re.sub(r"<[^>]+>", "", page.read_text())
        for m in FILL.finditer(text):
            found += 1
            profile, only, seeds = m.group(2), m.group(3).split()[1:], [int(s) for s in m.group(4).split()]
            store = RunStore(root / "runs", profile, results=root / "results")
            rows = fill_plan(store, grid, experiments=only or None, seeds=seeds)
            for s in seeds:
                assert any(r["fillable"] and r["seed"] == s for r in rows), \
                    f"{page.relative_to(smoke_book)}: {m.group(0)!r} fills nothing for seed {s}"
    assert found, "no fill command in the book (Part I always lacks seeds 2-4)"


@needs_browser
def test_part1_draws_the_tsne_and_the_explorer_from_the_seed_with_embeddings(smoke_book):
    from playwright.sync_api import sync_playwright

    dichotomy = (smoke_book / "book" / "part1" / "dichotomy.html").read_text()
    # (the notebook's source is in the page too, folded: look for what the cells printed)
    assert "<strong>No embeddings in these runs.</strong>" not in dichotomy and "Figures show seed 1" in dichotomy
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto((smoke_book / "book" / "part1" / "dichotomy.html").as_uri())
        page.wait_for_load_state("load")
        assert page.locator("section#latent-space-of-the-teachers-fig-4 img").count() >= 1
        page.goto((smoke_book / "book" / "part1" / "explorer.html").as_uri())
        page.wait_for_load_state("load")
        page.wait_for_timeout(800)
        # plotly may keep a trace's coordinates as a typed array or as {dtype, bdata} (base64): count either
        points = page.evaluate("""() => { const gd = document.querySelector('.kd-explorer .plotly-graph-div');
            const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1};
            const len = a => !a ? 0 : (Array.isArray(a) || ArrayBuffer.isView(a)) ? a.length
                : a.bdata ? atob(a.bdata).length / (size[a.dtype] || 8) : 0;
            return gd && gd.data ? gd.data.reduce((n, t) => n + len(t.x), 0) : 0; }""")
        assert points >= 5 * 10 * 10, points  # five teachers, ten classes, many images each
        assert "seed 1" in page.inner_text("body")
        img = page.locator("img[id$='-img']").first
        img.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(200)
        assert page.evaluate("""() => { const img = document.querySelector("img[id$='-img']");
            const r = img.getBoundingClientRect();
            return document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === img; }""")
        browser.close()


def test_the_front_page_states_no_figure_the_readme_does_not(smoke_book):
    """Timings, test counts and dates on the front page come from the README (or are glued from a notebook)."""
    text = re.sub(r"<[^>]+>", " ", (smoke_book / "book" / "intro.html").read_text())
    readme = (REPO / "README.md").read_text()
    for pattern in (r"\d+ min \d+ s", r"\d+ passed", r"\d+ skipped", r"20\d\d-\d\d-\d\d"):
        for figure in re.findall(pattern, text):
            assert figure in readme, f"the front page says {figure!r}, the README does not"


def _html_tables(html: str) -> list[list[list[str]]]:
    """Every <table> of a page as rows of cell texts (tags stripped), with Python's own HTML parser."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr" and self.tables:
                self.tables[-1].append([])
            elif tag in ("td", "th") and self.tables:
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.tables[-1][-1].append(" ".join("".join(self.cell).split()))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Tables()
    parser.feed(html)
    return parser.tables


def test_the_front_pages_table_restates_table_1(smoke_book):
    """Each cell of the front page's table (mean accuracy and seeds) equals the mean and the seeds column of the
    same row of Table 1a, 1b or 1c in that part's results chapter."""
    intro = (smoke_book / "book" / "intro.html").read_text()
    (front,) = [t for t in _html_tables(intro) if t and "Part I: teacher" in t[0]]
    header, rows = front[0], {r[0]: r[1:] for r in front[1:]}
    assert len(rows) == 5 and header[1:] == ["Part I: teacher", "LeNet student", "AlexNet student", "Part II: teacher",
                                             "LeNet student", "AlexNet student"]
    checked = 0
    for k, part in enumerate(("part1", "part2")):
        results = (smoke_book / "book" / part / "results.html").read_text()
        table1 = [t for t in _html_tables(results) if t and "accuracy (paper)" in t[0] and "KL human" in t[0]][:3]
        assert len(table1) == 3, part  # Tables 1a (teachers), 1b (LeNet), 1c (AlexNet)
        for j, t in enumerate(table1):
            col = {name: i for i, name in enumerate(t[0])}
            for line in t[1:]:
                regime, acc, seeds = line[col["teacher regime"]], line[col["accuracy"]], line[col["seeds"]]
                expect = "-" if acc == "-" else f"{acc.split(' ± ')[0]} ({seeds})"
                assert rows[regime][3 * k + j] == expect, (part, j, regime, rows[regime], acc, seeds)
                checked += acc != "-"
    assert checked >= 15, checked  # at least Part II's smoke cells are all present
