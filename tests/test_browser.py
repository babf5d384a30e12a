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
  download button for the ``.ipynb``.

Screenshots of the introduction and the first chapter go to ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import pathlib
import re
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
