"""The built book, opened page by page in a real headless browser.

``make test`` builds ``_build/html`` and then runs this file. Every HTML page is served
from 127.0.0.1 and loaded in Debian's Chromium through Playwright (never a downloaded
browser). For each page we record what a reader's browser would do and check that:

- math is typeset by the local MathJax (``mjx-container`` elements, no raw TeX left);
- every image loaded, and has alt text that describes it (not a file name);
- no request goes to any host but 127.0.0.1 (no CDN, no web fonts, no analytics);
- no JavaScript error was thrown;
- every internal link resolves, including ``#anchors`` (the id exists on the target page);
- headings start at h1 and never skip a level;
- chapter (notebook) pages have the Colab launch button for this repository and a
  download button for the ``.ipynb``;
- nothing is cut off: no display equation, theorem box, table, code block or inline code
  is wider than its column at 1024 and 1280 px, nor in print media at the PDF's text width
  (``test_nothing_is_wider_than_its_column``; the measurements go to ``_build/overflow.json``);
- each chapter page has one button that shows every folded code cell and folds them again.

Screenshots of the introduction and the first chapter go to ``_build/screenshots/``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import pathlib
import re
import sys
import tempfile
import threading
import urllib.parse

import pytest

import setup_cell

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HOST = "127.0.0.1"
# Offline-safe flags (see /work/shared/TOOLCHAIN.md); Playwright adds --headless itself.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Raw TeX that MathJax should have consumed: $$, \( \[ and backslash commands like \nabla.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\[a-zA-Z]{2,}")
# Harmless errors from third-party theme code, each with the reason it is tolerated.
KNOWN_JS_ERRORS = {
    "Identifier 'THEBE_JS_URL' has already been declared":
        "sphinx-thebe 0.3.1 under Sphinx 7.4 emits its config <script> twice; the book does not use thebe",
}
FILE_NAME_ALT = re.compile(r"^(?:\.\./)*(?:_images/)?[\w.-]+\.(?:png|jpe?g|svg|gif)$", re.I)

# One evaluation per page collects everything the checks need.
PAGE_REPORT_JS = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const main = document.querySelector("main") || document.body;
  const visibleText = (root) => {
    const copy = root.cloneNode(true);
    copy.querySelectorAll("pre, code, script, style, textarea, mjx-container, .highlight")
        .forEach((e) => e.remove());
    return copy.textContent;
  };
  return {
    mathElements: document.querySelectorAll(".math").length,
    mathUntypeset: [...document.querySelectorAll(".math")]
        .filter((e) => !e.querySelector("mjx-container") && e.tagName !== "MJX-CONTAINER")
        .map((e) => e.textContent.trim().slice(0, 80)),
    mjxContainers: document.querySelectorAll("mjx-container").length,
    text: visibleText(main),
    images: [...document.images].map((img) => ({
        src: img.currentSrc || img.src, alt: img.getAttribute("alt"),
        loaded: img.complete && img.naturalWidth > 0,
        visible: !!(img.offsetWidth || img.offsetHeight || img.getClientRects().length) })),
    links: [...document.querySelectorAll("a[href]")].map((a) => ({
        href: a.href, raw: a.getAttribute("href"), text: a.textContent.trim().slice(0, 60),
        title: a.getAttribute("title") || "" })),
    ids: [...document.querySelectorAll("[id]")].map((e) => e.id)
        .concat([...document.querySelectorAll("a[name]")].map((e) => e.getAttribute("name"))),
    headings: [...main.querySelectorAll("h1, h2, h3, h4, h5, h6")]
        .filter((h) => !h.closest("nav, header, footer, .bd-sidebar, .bd-header"))
        .map((h) => ({ level: Number(h.tagName[1]), text: h.textContent.trim().slice(0, 60) })),
  };
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML} has no built book: run `make book` first (`make test` builds it before this test)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


REDIRECT = re.compile(r'^\s*<meta http-equiv="Refresh" content="0; url=([^"]+)" />\s*$', re.I)


def redirects() -> dict[str, str]:
    """Redirect stubs such as index.html -> book/intro.html: {page: target page}."""
    found = {}
    for p in HTML.rglob("*.html"):
        if p.stat().st_size < 300 and (m := REDIRECT.match(p.read_text())):
            found[p.relative_to(HTML).as_posix()] = (p.parent / m.group(1)).resolve().relative_to(HTML).as_posix()
    return found


def html_pages() -> list[str]:
    """Every page a reader can reach: all .html files except theme/static internals and redirects."""
    skip, stubs = {"_static", "_sources", "_images"}, redirects()
    return sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if not skip.intersection(p.relative_to(HTML).parts)
        and p.relative_to(HTML).as_posix() not in stubs
    )


def test_redirects_point_to_pages():
    targets = redirects()
    assert "index.html" in targets or (HTML / "index.html").exists()
    _fail_if([f"{page} redirects to missing {to}" for page, to in targets.items() if not (HTML / to).exists()],
             "broken redirects")


def notebook_pages() -> dict[str, str]:
    """{'book/NN_name.html': 'NN_name'} for every chapter notebook that was built."""
    return {
        f"book/{nb.stem}.html": nb.stem
        for nb in sorted((ROOT / "book").glob("*.ipynb"))
        if (HTML / "book" / f"{nb.stem}.html").exists()
    }


@pytest.fixture(scope="module")
def crawl(server):
    """Load every page once; return {page: report} with requests and errors included."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (`make browser-deps`) or set CHROMIUM=/path")
    from playwright.sync_api import sync_playwright

    pages = html_pages()
    assert pages, f"no HTML pages under {HTML}"
    reports: dict[str, dict] = {}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chapters = list(notebook_pages())
    shots = {"book/intro.html": "intro.png"}
    if chapters:
        shots[chapters[0]] = "chapter.png"
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, service_workers="block",
        )
        try:
            page = context.new_page()
            requests: list[str] = []
            errors: list[str] = []
            failed: list[str] = []

            def on_route(route):
                host = urllib.parse.urlsplit(route.request.url).hostname
                if route.request.url.startswith(("data:", "blob:")) or host == HOST:
                    route.continue_()
                else:
                    route.abort()  # recorded by on_request; never wait on the network

            context.route("**/*", on_route)
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
            page.on("response", lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
            for name in pages:
                for log in (requests, errors, failed):
                    log.clear()
                page.goto(f"{server}/{name}", wait_until="load")
                report = page.evaluate(PAGE_REPORT_JS)
                page.wait_for_load_state("networkidle")
                report.update(requests=list(requests), errors=list(errors), failed=list(failed), url=page.url)
                reports[name] = report
                if name in shots:
                    page.screenshot(path=str(SCREENSHOTS / shots[name]), full_page=False)
        finally:
            context.close()
    return reports


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}:\n  " + "\n  ".join(problems), pytrace=False)


def test_math_is_typeset_locally(crawl):
    problems = []
    for name, r in crawl.items():
        if r["mathElements"] and not r["mjxContainers"]:
            problems.append(f"{name}: {r['mathElements']} math elements but no <mjx-container> (MathJax did not run)")
        for tex in r["mathUntypeset"]:
            problems.append(f"{name}: math left as text: {tex!r}")
        for match in sorted(set(RAW_TEX.findall(r["text"]))):
            at = r["text"].find(match)
            problems.append(f"{name}: raw TeX {match!r} in the text: ...{r['text'][max(0, at - 40):at + 40]!r}...")
    _fail_if(problems, "math not typeset")
    assert any(r["mjxContainers"] for r in crawl.values()), "no page of the book has typeset math"


def test_mathjax_is_served_from_the_book(crawl):
    scripts = {u for r in crawl.values() for u in r["requests"] if "mathjax" in u.lower()}
    assert scripts, "no page requested MathJax"
    remote = [u for u in scripts if not urllib.parse.urlsplit(u).path.startswith("/_static/mathjax/")]
    _fail_if(remote, "MathJax loaded from outside _build/html/_static/mathjax")


def test_no_request_leaves_the_machine(crawl):
    problems = [
        f"{name}: {url}"
        for name, r in crawl.items()
        for url in r["requests"]
        if not url.startswith(("data:", "blob:")) and urllib.parse.urlsplit(url).hostname != HOST
    ]
    _fail_if(sorted(set(problems)), "requests to other hosts (a reader offline would wait for or miss these)")


def test_every_resource_loads_and_no_script_fails(crawl):
    problems = [f"{name}: failed to load {f}" for name, r in crawl.items() for f in r["failed"]
                if urllib.parse.urlsplit(f.split(" ")[0]).hostname == HOST]
    problems += [f"{name}: JavaScript error: {e}" for name, r in crawl.items() for e in r["errors"]
                 if not any(known in e for known in KNOWN_JS_ERRORS)]
    _fail_if(problems, "broken resources or scripts")


def test_images_load_and_have_alt_text(crawl):
    problems = []
    for name, r in crawl.items():
        for img in r["images"]:
            if not img["loaded"]:
                problems.append(f"{name}: image did not load: {img['src']}")
            alt = (img["alt"] or "").strip()
            if not alt:
                problems.append(f"{name}: image without alt text: {img['src']}")
            elif FILE_NAME_ALT.match(alt):
                problems.append(
                    f"{name}: image's alt text is only its file name ({alt}); give the figure's cell the "
                    f'metadata {{"mystnb": {{"image": {{"alt": "what the figure shows"}}}}}}'
                )
    _fail_if(problems, "image problems")


def _target_file(path: str) -> pathlib.Path:
    local = HTML / urllib.parse.unquote(path).lstrip("/")
    return local / "index.html" if path.endswith("/") or local.is_dir() else local


def test_internal_links_and_anchors_resolve(crawl, server):
    pages_by_path = {urllib.parse.urlsplit(f"{server}/{name}").path: name for name in crawl}
    ids = {name: set(r["ids"]) for name, r in crawl.items()}
    problems = set()
    for name, r in crawl.items():
        for link in r["links"]:
            parts = urllib.parse.urlsplit(link["href"])
            if parts.scheme not in ("http", "https") or parts.hostname != HOST:
                continue
            target = _target_file(parts.path)
            if not target.exists():
                problems.add(f"{name}: link {link['raw']!r} ({link['text']!r}) points to a missing file")
                continue
            fragment = urllib.parse.unquote(parts.fragment)
            if not fragment:
                continue
            target_page = pages_by_path.get(parts.path) or pages_by_path.get(
                "/" + target.relative_to(HTML).as_posix())
            if target_page is None:
                problems.add(f"{name}: link {link['raw']!r} has an #anchor into a non-page file")
            elif fragment not in ids[target_page]:
                problems.add(f"{name}: link {link['raw']!r} ({link['text']!r}): no id={fragment!r} on {target_page}")
    _fail_if(sorted(problems), "broken internal links")


def test_heading_levels_do_not_skip(crawl):
    problems = []
    for name, r in crawl.items():
        levels = [h["level"] for h in r["headings"]]
        if not levels:
            continue
        if levels[0] != 1:
            problems.append(f"{name}: first heading is h{levels[0]} ({r['headings'][0]['text']!r}), not h1")
        for before, h in zip(levels, r["headings"][1:]):
            if h["level"] > before + 1:
                problems.append(f"{name}: h{before} followed by h{h['level']} ({h['text']!r})")
    _fail_if(problems, "heading levels skip (screen readers navigate by them)")


def test_chapters_have_colab_and_download_buttons(crawl):
    chapters = notebook_pages()
    assert chapters, "no chapter notebook was built into _build/html/book/"
    url, branch = setup_cell.repository()
    owner_repo = urllib.parse.urlsplit(url).path.strip("/")
    problems = []
    for page, stem in chapters.items():
        hrefs = {link["href"] for link in crawl[page]["links"]}
        colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/book/{stem}.ipynb"
        if colab not in hrefs:
            problems.append(f"{page}: no 'open in Colab' link to {colab}")
        downloads = [h for h in hrefs if urllib.parse.urlsplit(h).path.endswith(f"/_sources/book/{stem}.ipynb")]
        if not downloads:
            problems.append(f"{page}: no download link for {stem}.ipynb")
            continue
        served = _target_file(urllib.parse.urlsplit(downloads[0]).path)
        try:
            nb = json.loads(served.read_text())
        except (OSError, ValueError) as e:
            problems.append(f"{page}: the downloadable notebook {served} is not a notebook ({e})")
            continue
        if not any(c.get("outputs") for c in nb.get("cells", []) if c.get("cell_type") == "code"):
            problems.append(f"{page}: the downloadable notebook has no outputs")
    _fail_if(problems, "launch/download buttons")


def test_screenshots_were_taken(crawl):
    shots = sorted(p.name for p in SCREENSHOTS.glob("*.png"))
    assert "intro.png" in shots, f"no screenshot of the introduction in {SCREENSHOTS}"
    if notebook_pages():
        assert "chapter.png" in shots, f"no screenshot of a chapter in {SCREENSHOTS}"


# --- Nothing cut off -------------------------------------------------------------------------
# Every display equation, theorem box, admonition, table, code block and inline code span of
# the article must fit its column: at the two window widths a student reads at, and in print
# media at the width of the PDF's text block (tools/pdf.py: A4 less 14 mm margins, with the
# same print CSS). A wide element either scrolls sideways (part of it hidden until scrolled)
# or runs past the column's edge (cut off in print); both count.
OVERFLOW_WIDTHS = {"1024px": 1024, "1280px": 1280}
# A4 is 210 mm; tools/pdf.py prints with 14 mm side margins: 182 mm at 96 px per inch.
PRINT_WIDTH = round((210 - 2 * 14) / 25.4 * 96)
OVERFLOW_JS = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const column = document.querySelector("article.bd-article") || document.querySelector("main")
      || document.body;
  const edge = column.getBoundingClientRect().right;
  const kinds = [
    ["equation", 'mjx-container[display="true"]'],
    ["theorem box", "div.proof, div.admonition"],
    ["table", "table"],
    ["code block", "div.highlight pre, div.cell_output pre"],
    ["inline code", "p code, li code, td code, dd code"],
  ];
  const found = [];
  for (const [kind, selector] of kinds) {
    for (const e of column.querySelectorAll(selector)) {
      const rects = e.getClientRects();
      if (!rects.length || e.closest("details:not([open])")) continue;  // folded: not shown
      let right = Math.max(...[...rects].map((r) => r.right));
      let hidden = e.scrollWidth - e.clientWidth;
      if (kind === "equation") {
        // MathJax's own box may be as wide as the column while the math inside is wider.
        const math = e.querySelector("mjx-math") || e;
        right = Math.max(right, math.getBoundingClientRect().right);
        const box = e.closest("div.math") || e.parentElement;
        hidden = Math.max(hidden, box.scrollWidth - box.clientWidth);
      }
      if (kind === "inline code") hidden = 0;  // inline spans wrap or run past the edge
      const past = right - edge;
      if (hidden > 1 || past > 1) {
        found.push({ kind, text: e.textContent.trim().replace(/\s+/g, " ").slice(0, 70),
                     hidden: Math.round(hidden), past: Math.round(past) });
      }
    }
  }
  return found;
}
"""


@contextlib.contextmanager
def _local_browser():
    """A fresh headless Chromium context (1280 x 900) that may only reach 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, service_workers="block",
        )
        context.route("**/*", lambda route: route.continue_()
                      if urllib.parse.urlsplit(route.request.url).hostname in (HOST, None)
                      else route.abort())
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def overflow(server):
    """{(width label, page): [wide elements]} at each window width and in print."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (`make browser-deps`) or set CHROMIUM=/path")
    sys.path.insert(0, str(ROOT / "tools"))
    import pdf as pdf_tool

    found: dict[tuple[str, str], list[dict]] = {}
    with _local_browser() as context:
        page = context.new_page()
        for label, width in [*OVERFLOW_WIDTHS.items(), ("print", PRINT_WIDTH)]:
            page.set_viewport_size({"width": width, "height": 900})
            page.emulate_media(media="print" if label == "print" else "screen")
            for name in html_pages():
                page.goto(f"{server}/{name}", wait_until="load")
                if label == "print":
                    page.add_style_tag(content=pdf_tool.PRINT_CSS)
                    page.evaluate("() => document.querySelectorAll('details')"
                                  ".forEach((d) => { d.open = true; })")
                found[(label, name)] = page.evaluate(OVERFLOW_JS)
    return found


def test_nothing_is_wider_than_its_column(overflow):
    problems = [f"{label} {name}: {e['kind']} {e['text']!r} ({e['hidden']} px hidden, "
                f"{e['past']} px past the column)"
                for (label, name), wide in overflow.items() for e in wide]
    counts = {}
    for (label, _), wide in overflow.items():
        for e in wide:
            counts[(label, e["kind"])] = counts.get((label, e["kind"]), 0) + 1
    print("overflow counts:", counts)
    (ROOT / "_build" / "overflow.json").write_text(json.dumps(
        [dict(width=label, page=name, **e) for (label, name), wide in overflow.items() for e in wide],
        indent=1))
    _fail_if(problems, f"cut off or scrolling sideways ({len(problems)}; by width and kind: {counts})")


# --- Code folded, one toggle per page ----------------------------------------------------------
# Plots, checks and setup are folded (cell tag hide-input); book/_static/code_toggle.js puts one
# button under each chapter's title that opens every folded cell at once (exercise solutions stay
# folded) and folds them again.
TOGGLE_JS = r"""
async () => {
  const button = document.querySelector("button.code-toggle");
  const folded = () => [...document.querySelectorAll("div.cell:not(.tag_solution) > details.hide")];
  const openCount = () => folded().filter((d) => d.open).length;
  if (!button) return { button: false, folded: folded().length };
  const before = openCount();
  button.click();
  const shown = openCount();
  const solutionsOpen = document.querySelectorAll("div.cell.tag_solution > details[open]").length;
  button.click();
  return { button: true, folded: folded().length, before, shown, after: openCount(), solutionsOpen };
}
"""


def test_one_toggle_shows_all_folded_code(server):
    problems = []
    with _local_browser() as context:
        page = context.new_page()
        for name in notebook_pages():
            page.goto(f"{server}/{name}", wait_until="load")
            r = page.evaluate(TOGGLE_JS)
            if not r["button"]:
                problems.append(f"{name}: no 'show all code' button ({r['folded']} folded cells)")
            elif not (r["before"] == 0 and r["shown"] == r["folded"] and r["after"] == 0
                      and r["solutionsOpen"] == 0):
                problems.append(f"{name}: the toggle does not open and fold every folded cell: {r}")
    _fail_if(problems, "the page's code toggle")
