"""The book's two PDFs (``make pdf``), read back with poppler.

``_build/pdf/book.pdf`` is the book a student reads (introduction, chapters, notation,
references); ``_build/pdf/reference.pdf`` is the reference volume (API, claims ledger,
seed audit, calibration). ``make test`` prints both (``tools/pdf.py``: the single-page
HTML build in headless Chromium) right after the HTML build, and then this file checks,
with Debian's poppler-utils (``pdfinfo``, ``pdftotext``, ``pdftohtml``), that for each

- it is A4 and has a plausible number of pages: every document of its volume starts
  on a page of its own, no runaway layout multiplies the pages, and the book has at
  most ``MAX_BOOK_PAGES`` pages;
- every chapter title is in the text, at the top of a page;
- the math is typeset: the prose (everything but code, which is set in a monospace
  font) contains no raw TeX (``$$``, ``\\(``, ``\\frac`` ...), and typeset symbols are there;
- the figures are in it (at least as many images as the notebooks have PNG figures);
- its internal links work: every link inside the document points at a named
  destination that exists, and the table of contents links every chapter;
- it is not older than the book's sources, and the HTML book serves the same file
  (the introduction links to it).
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parents[1]
PDFS = {volume: ROOT / "_build" / "pdf" / f"{volume}.pdf" for volume in ("book", "reference")}
# The documents of the reference volume (tools/pdf.py's REFERENCE_DOCUMENTS); the book has the rest.
REFERENCE_DOCUMENTS = ("book/api", "book/ledger", "book/audit", "book/calibration")
# The book a student reads, lesson and evidence verdicts, fits in 250 A4 pages. The reference
# volume's API and ledger run to about 90 pages each: it is only kept from running away.
MAX_BOOK_PAGES = 250
MAX_REFERENCE_PAGES = 320
REFERENCE_TITLE = "Policy Gradients, Executable: reference volume"
# Raw TeX that MathJax should have consumed (the browser test's pattern).
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\[a-zA-Z]{2,}")
# A runaway layout (every cell on its own page, a column a few words wide) multiplies the
# pages; the book prints at about 20 pages a document.
MAX_PAGES_PER_DOCUMENT = 45


def _run(*args: str) -> str:
    missing = shutil.which(args[0]) is None
    if missing:
        pytest.fail(f"{args[0]} not found: install Debian's poppler-utils (`make browser-deps`)")
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module", params=sorted(PDFS))
def volume(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def pdf(volume) -> pathlib.Path:
    path = PDFS[volume]
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make pdf` (`make test` prints it before this test)")
    return path


def toc_documents(volume: str | None = None) -> list[pathlib.Path]:
    """The source files of the documents in _toc.yml, in reading order: all of them, or
    those one volume prints (the book: the root and everything but the reference documents)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]
    for part in toc.get("parts", []):
        names += [entry["file"] for entry in part.get("chapters", [])]
    if volume == "book":
        names = [n for n in names if n not in REFERENCE_DOCUMENTS]
    elif volume == "reference":
        names = [n for n in names if n in REFERENCE_DOCUMENTS]
    found = []
    for name in names:
        candidates = [ROOT / f"{name}{ext}" for ext in (".md", ".ipynb")]
        found += [p for p in candidates if p.exists()][:1]
    assert len(found) == len(names), f"_toc.yml names a missing file: {names}"
    return found


def title(path: pathlib.Path) -> str:
    """The document's first heading, as a reader sees it (markup removed)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text()
    heading = next(line for line in text.splitlines() if line.startswith("# "))
    return re.sub(r"[`*_]", "", heading[2:]).strip()


def _squash(text: str) -> str:
    # soft hyphens dropped; Sphinx's smart quotes print ' as a typographic apostrophe
    return " ".join(text.replace("\u00ad", "").replace("\u2019", "'").split())


@functools.lru_cache(maxsize=None)
def _pages_text(path: pathlib.Path) -> tuple[str, ...]:
    return tuple(_run("pdftotext", "-enc", "UTF-8", str(path), "-").split("\f"))


@functools.lru_cache(maxsize=None)
def _prose_lines(path: pathlib.Path) -> tuple[tuple[int, str], ...]:
    """(page, text) of every text run not set in a monospace (code) font."""
    root = ET.fromstring(_run("pdftohtml", "-xml", "-i", "-stdout", "-q", str(path)))
    fonts = {f.get("id"): f.get("family", "") for f in root.iter("fontspec")}
    runs = []
    for page in root.iter("page"):
        for text in page.iter("text"):
            if "mono" not in fonts.get(text.get("font"), "").lower():
                runs.append((int(page.get("number")), "".join(text.itertext())))
    return tuple(runs)


def test_page_count_and_size(pdf, volume):
    info = _run("pdfinfo", str(pdf))
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    print(f"{volume}: {pages} pages")
    documents = len(toc_documents(volume))
    if volume == "book":
        assert documents <= pages <= MAX_PAGES_PER_DOCUMENT * documents, (
            f"{pages} pages for {documents} documents: expected at least one page each and at most "
            f"{MAX_PAGES_PER_DOCUMENT} each")
        assert pages <= MAX_BOOK_PAGES, f"the book has {pages} pages, more than {MAX_BOOK_PAGES}"
    else:
        assert documents <= pages <= MAX_REFERENCE_PAGES, (
            f"the reference volume has {pages} pages for {documents} documents (at most {MAX_REFERENCE_PAGES})")
    assert re.search(r"^Page size:\s+595\.\d+ x 841\.\d+|^Page size:\s+595\.\d+ x 842\.\d+",
                     info, re.M), f"not A4: {info}"


def test_every_chapter_title_starts_a_page(pdf, volume):
    pages = [_squash(page) for page in _pages_text(pdf)]
    text = " ".join(pages)
    missing = [t for path in toc_documents(volume) if _squash(t := title(path)) not in text]
    assert not missing, f"chapter titles missing from the PDF's text: {missing}"
    if volume == "book":
        others = [t for path in toc_documents("reference")
                  if any(page.startswith(_squash(t := title(path))) for page in pages)]
        assert not others, f"documents of the reference volume printed in the book: {others}"
    else:
        assert pages[0].startswith(REFERENCE_TITLE), f"the reference volume opens with {pages[0][:80]!r}"
        assert "Who it is for" not in text, "the introduction is printed in the reference volume"
    # the reference volume opens with its title and contents: its first document may follow them
    first = 1 if volume == "reference" else 0
    not_at_top = [t for path in toc_documents(volume)[first:]
                  if not any(page.startswith(_squash(t := title(path))) for page in pages)]
    assert not not_at_top, f"chapters that do not start on a page of their own: {not_at_top}"


def test_math_is_typeset_not_raw_tex(pdf, volume):
    runs = _prose_lines(pdf)
    raw = [(page, text.strip()[:80]) for page, text in runs if RAW_TEX.search(text)]
    assert not raw, f"raw TeX in the PDF's prose (page, text): {raw[:10]}"
    prose = "".join(text for _, text in runs)
    if volume != "book":
        return
    for symbol in ("∇", "θ", "γ", "∑"):
        assert prose.count(symbol) >= 10, f"typeset math missing: {symbol!r} appears {prose.count(symbol)} times"


def test_figures_are_in_it(pdf, volume):
    figures = set()
    for path in toc_documents(volume):
        if path.suffix == ".ipynb":
            for cell in json.loads(path.read_text())["cells"]:
                for out in cell.get("outputs", []):
                    if "image/png" in out.get("data", {}):
                        figures.add("".join(out["data"]["image/png"]))
    images = [line for line in _run("pdfimages", "-list", str(pdf)).splitlines()[2:] if line.strip()]
    assert len(images) >= len(figures), f"{len(images)} images in the PDF, {len(figures)} figures in the notebooks"


def _name(escaped: bytes) -> str:
    """A PDF name object (``/document-book#2F01_x``) decoded to its text."""
    return re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), escaped).decode()


def test_internal_links_resolve(pdf, volume):
    data = pdf.read_bytes()
    links = [_name(m.group(1)) for m in re.finditer(rb"/Subtype\s*/Link[^>]*?/Dest\s*/([^\s/>\]]+)", data)]
    destinations = set(re.findall(r'^\s*\d+\s+\[.*?\]\s+"(.*)"$', _run("pdfinfo", "-dests", str(pdf)), re.M))
    assert len(links) >= len(toc_documents(volume)) - 1, f"only {len(links)} internal links in the PDF"
    broken = sorted({name for name in links if name not in destinations})
    assert not broken, f"internal links to destinations the PDF lacks: {broken[:10]}"
    documents = toc_documents(volume)[1:] if volume == "book" else toc_documents(volume)
    chapters = {f"document-{path.relative_to(ROOT).with_suffix('').as_posix()}" for path in documents}
    assert chapters <= set(links), f"chapters no link points at: {sorted(chapters - set(links))}"


def test_not_older_than_the_sources_and_served_by_the_html_book(pdf, volume):
    sources = toc_documents(volume) + [ROOT / "_config.yml", ROOT / "_toc.yml"]
    stale = [p.name for p in sources if p.stat().st_mtime > pdf.stat().st_mtime]
    assert not stale, f"{pdf} is older than {stale}: run `make pdf`"
    if (ROOT / "_build" / "html" / "index.html").exists():
        copy = ROOT / "_build" / "html" / pdf.name
        assert copy.exists() and copy.read_bytes() == pdf.read_bytes(), (
            f"{copy} (linked from the introduction) is not the printed PDF: run `make pdf`")
