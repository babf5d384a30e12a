"""Print the single-page HTML build of the book to two PDFs, in headless Chromium.

The **book** (``book.pdf``): the introduction, the chapters, the notation and the references,
the volume a student reads. The **reference volume** (``reference.pdf``): the API reference,
the claims ledger, the seed audit and the calibration appendix, the volume one looks things
up in. Both are printed from the same single page; each leaves out the other's documents
(``VOLUMES``), and a link to a document of the other volume keeps its text but not its target.

``make pdf`` runs ``jupyter-book build . --builder singlehtml`` (every page of the book
in one HTML document, ``_build/singlehtml``) and then this script, which

1. serves that folder from 127.0.0.1 and opens it in Debian's Chromium through
   Playwright (the browser the browser test drives; nothing is downloaded and no
   request may leave the machine: any other host is refused);
2. waits until MathJax has typeset every formula and every image has loaded;
3. turns every link between pages into a link inside the document (a claim in the
   ledger, a section of another chapter, a chapter), and removes the target of the
   few links that only make sense on the web site (the ``.ipynb`` download, the PDF
   itself), keeping their text;
4. adds print rules: each chapter starts on a new page, long code lines wrap
   instead of being cut, folded solutions and evidence are printed open (the
   setup cell, folded on the web, is left out);
5. prints A4 pages with page numbers and a PDF outline, to ``_build/pdf/book.pdf`` and
   ``_build/pdf/reference.pdf``, and copies the files to ``_build/html/`` when the HTML
   book is built, so that the introduction's links to them work in the web book.

Usage: ``python tools/pdf.py [--html _build/singlehtml] [--out _build/pdf]``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Offline-safe flags (see /work/shared/TOOLCHAIN.md); Playwright adds --headless itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The documents of the reference volume; every other document of _toc.yml is in the book.
REFERENCE_DOCUMENTS = ("book/api", "book/ledger", "book/audit", "book/calibration")
VOLUMES = {
    # The book prints each chapter's claim tables as their one-line verdict ("The learning
    # loop: 4 checks, all pass"); every claim, with its statistic, is in the reference
    # volume's ledger.
    "book": {"title": None, "leave_out": REFERENCE_DOCUMENTS, "root": True, "verdicts_only": True},
    "reference": {
        "title": "Policy Gradients, Executable: reference volume",
        "leave_out": None,  # everything but REFERENCE_DOCUMENTS
        "root": False,
        "verdicts_only": False,
    },
}

# Runs in the page first: keep only one volume's documents. The root document (the
# introduction) holds the others, each after an empty <span id="document-NAME">.
SELECT_JS = r"""
({ keep, root, title, verdictsOnly }) => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const spans = [...document.querySelectorAll('span[id^="document-"]')];
  const kept = [];
  for (const span of spans) {
    const section = span.nextElementSibling;
    const name = span.id.slice("document-".length);
    if (keep.includes(name)) { kept.push([span, section]); continue; }
    if (section && section.tagName === "SECTION") section.remove();
    span.remove();
  }
  if (!root) {
    // Leave out the introduction's own text: the kept documents go straight into the article.
    const top = article.querySelector(":scope > section");
    for (const [span, section] of kept) { article.appendChild(span); article.appendChild(section); }
    if (top) top.remove();
    document.title = title;
  }
  // The printed title and table of contents (Jupyter Book's #jb-print-docs-body): this
  // volume's title, and only this volume's documents.
  const printed = document.getElementById("jb-print-docs-body");
  if (printed) {
    const h1 = printed.querySelector("h1");
    if (h1 && title) h1.textContent = title;
    printed.querySelectorAll("nav li").forEach((li) => {
      const a = li.querySelector("a[href]");
      const target = a ? decodeURIComponent(a.getAttribute("href")).replace(/^#/, "") : "";
      if (target.startsWith("document-") && !keep.includes(target.slice(9))) li.remove();
    });
    // captions ("Theory", "Appendix") whose list is now empty
    printed.querySelectorAll("nav p.caption").forEach((caption) => {
      const list = caption.nextElementSibling;
      if (list && list.tagName === "UL" && !list.querySelector("li")) { list.remove(); caption.remove(); }
    });
  }
  // The web book's lists of chapters (toctree) name documents of both volumes: drop those
  // that are not in this one.
  document.querySelectorAll(".toctree-wrapper li").forEach((li) => {
    const a = li.querySelector("a[href]");
    const target = a && decodeURIComponent(new URL(a.href).hash.slice(1));
    if (target && target.startsWith("document-") && !keep.includes(target.slice(9))) li.remove();
  });
  if (verdictsOnly) {
    document.querySelectorAll("details.claim-table").forEach((d) => {
      const p = document.createElement("p");
      p.className = "claim-verdict";
      const summary = d.querySelector("summary");
      p.textContent = "Checks: " + (summary ? summary.textContent.trim() : "")
          + " (each claim is in the claims ledger of the reference volume).";
      d.replaceWith(p);
    });
  }
  return kept.length;
}
"""

PRINT_CSS = """
@media print {
  /* Each chapter (a document of the single page) starts on a new page. */
  section:has(> span.pdf-document-start) { break-before: page; }
  /* Code and outputs wrap at the page edge instead of being cut. */
  pre, .highlight pre, .output pre {
    white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important;
  }
  div.cell_output, div.cell_input, .highlight { overflow: visible !important; }
  /* 88 characters, the book's line limit, fit the width of the paper. */
  pre, .highlight pre { font-size: 11.5px !important; line-height: 1.35 !important; }
  /* A short cell is not split across pages (a long one breaks where it must). */
  div.cell_input, div.cell_output .output, div.proof, div.admonition { break-inside: avoid; }
  /* Figures and equations are not split across pages. */
  img, figure, .math, mjx-container[display="true"] { break-inside: avoid; }
  h1, h2, h3, h4 { break-after: avoid; }
  /* Long tables (notation, claims, API) break between rows, not before the table. */
  table { break-inside: auto !important; }
  tr { break-inside: avoid; }
  /* Claim ids and other code in table cells wrap, leaving room for the other columns. */
  td code, td code span.pre { white-space: normal !important; overflow-wrap: anywhere; }
  /* Buttons that only do something on the web. */
  .headerlink, .copybtn, .toggle-button, button.toggle-button, .header-article,
  .prev-next-area, .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary,
  .bd-footer, .bd-footer-content, .bd-footer-article { display: none !important; }
  /* The theme keeps a left margin for the (hidden) sidebar: the text would run off
     the right edge of the paper. */
  .bd-main, .bd-content, .bd-article-container, .bd-page-width, .bd-article {
    max-width: 100% !important; width: auto !important;
    margin-left: 0 !important; margin-right: 0 !important;
    padding-left: 0 !important; padding-right: 0 !important;
  }
}
"""

# Runs in the page: wait for MathJax and the images, then make the links print-safe.
PREPARE_JS = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  // Images below the fold are lazy: load them all now.
  document.querySelectorAll('img[loading="lazy"]').forEach((img) => { img.loading = "eager"; });
  await Promise.all([...document.images].map((img) => img.complete ? null :
      new Promise((done) => { img.onload = img.onerror = done; })));
  // Sphinx marks where each document starts with an empty span before its section:
  // move it into the section, so that a link to the chapter lands on its first page.
  document.querySelectorAll('span[id^="document-"]').forEach((span) => {
    const section = span.nextElementSibling;
    if (section && section.tagName === "SECTION") {
      span.classList.add("pdf-document-start");
      section.prepend(span);
    }
  });
  // Folded code (hide-input: setup, plots, checks) stays out of print; what else
  // the web page folds (exercise solutions, evidence, dropdowns) is printed open.
  document.querySelectorAll("div.cell.tag_hide-input > details.hide").forEach((d) => d.remove());
  document.querySelectorAll("div.cell details.hide > summary").forEach((s) => {
    s.textContent = s.closest("div.cell").classList.contains("tag_solution") ? "Solution" : "";
  });
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  document.querySelectorAll(".toggle-hidden").forEach((e) => e.classList.remove("toggle-hidden"));
  const here = location.origin + location.pathname;
  const counts = { internal: 0, rewritten: 0, unlinked: 0, external: 0 };
  for (const a of document.querySelectorAll("a[href]")) {
    const url = new URL(a.getAttribute("href"), location.href);
    if (url.origin !== location.origin) { counts.external += 1; continue; }
    const id = decodeURIComponent(url.hash.slice(1));
    if (url.origin + url.pathname === here) {
      if (!id || document.getElementById(id)) { counts.internal += 1; continue; }
    }
    // A link to another page of the web book: the same anchor, else the chapter.
    const stem = url.pathname.split("/").pop().replace(/\.(html|ipynb|md)$/, "");
    const chapter = [...document.querySelectorAll('span[id^="document-"]')]
        .find((s) => s.id.split("/").pop() === stem);
    if (id && document.getElementById(id)) {
      a.setAttribute("href", "#" + id); counts.rewritten += 1;
    } else if (chapter && !/\.(ipynb|pdf)$/.test(url.pathname)) {
      a.setAttribute("href", "#" + chapter.id); counts.rewritten += 1;
    } else {
      a.removeAttribute("href"); counts.unlinked += 1;
    }
  }
  return {
    counts,
    untypeset: [...document.querySelectorAll(".math")]
        .filter((e) => !e.querySelector("mjx-container") && e.tagName !== "MJX-CONTAINER").length,
    brokenImages: [...document.images].filter((img) => !(img.naturalWidth > 0))
        .map((img) => img.getAttribute("src")),
  };
}
"""

TIMEOUT_MS = 10 * 60 * 1000
FOOTER = (
    '<div style="width:100%; font-size:8px; color:#666; text-align:center;">'
    '<span class="title"></span> &middot; <span class="pageNumber"></span> / '
    '<span class="totalPages"></span></div>'
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _page_to_print(html: pathlib.Path) -> str:
    """The single page, copied to the folder's root so that its relative links resolve.

    With the book's root document at ``book/intro``, Sphinx's singlehtml builder writes
    ``book/intro.html`` but computes its asset links (``_static/``, ``_images/``) from the
    output root, where ``index.html`` is only a redirect.
    """
    import yaml

    root = yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]
    page = html / f"{root}.html"
    if not page.exists():
        raise SystemExit(
            f"{page} is missing: build it first (make pdf runs the singlehtml build)"
        )
    target = html / "book-print.html"
    shutil.copyfile(page, target)
    return target.name


def documents() -> list[str]:
    """Every document of ``_toc.yml`` but the root, in reading order (``book/01_x`` ...)."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [entry["file"] for part in toc.get("parts", []) for entry in part.get("chapters", [])]


def volume_documents(volume: str) -> list[str]:
    """The documents (besides the root) that ``volume`` prints."""
    if volume == "reference":
        return [d for d in documents() if d in REFERENCE_DOCUMENTS]
    return [d for d in documents() if d not in VOLUMES[volume]["leave_out"]]


def print_pdf(html: pathlib.Path, out_dir: pathlib.Path) -> dict:
    """Print every volume of ``VOLUMES`` to ``out_dir/<volume>.pdf``; {volume: report}."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise SystemExit(
            f"{CHROMIUM} not found: run `make browser-deps` or set CHROMIUM=/path"
        )
    name = _page_to_print(html)
    handler = functools.partial(_QuietHandler, directory=str(html))
    httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    refused = []

    def on_route(route):
        url = route.request.url
        if (
            url.startswith(("data:", "blob:"))
            or urllib.parse.urlsplit(url).hostname == HOST
        ):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            context.route("**/*", on_route)
            page = context.new_page()
            # The single page holds the whole book (every figure, thousands of formulas):
            # loading and typesetting it takes a while on a busy machine.
            page.set_default_timeout(TIMEOUT_MS)
            reports = {}
            for volume, spec in VOLUMES.items():
                page.goto(
                    f"http://{HOST}:{httpd.server_address[1]}/{name}", wait_until="load"
                )
                keep = volume_documents(volume)
                kept = page.evaluate(
                    SELECT_JS,
                    {"keep": keep, "root": spec["root"], "title": spec["title"],
                     "verdictsOnly": spec["verdicts_only"]},
                )
                if kept != len(keep):
                    raise SystemExit(f"{volume}: {kept} of its {len(keep)} documents found")
                page.add_style_tag(content=PRINT_CSS)
                report = page.evaluate(PREPARE_JS)
                if report["untypeset"] or report["brokenImages"]:
                    raise SystemExit(f"not ready to print: {report}")
                out_dir.mkdir(parents=True, exist_ok=True)
                out = out_dir / f"{volume}.pdf"
                _print(page, out)
                reports[volume] = report
            context.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        (html / name).unlink(missing_ok=True)
    if refused:
        raise SystemExit(
            f"requests to other hosts while printing (refused): {sorted(set(refused))}"
        )
    return reports


def _print(page, out: pathlib.Path) -> None:
    page.pdf(
        path=str(out),
        format="A4",
        print_background=True,
        outline=True,
        tagged=True,
        display_header_footer=True,
        header_template="<span></span>",
        footer_template=FOOTER,
        margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"},
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--html", type=pathlib.Path, default=ROOT / "_build" / "singlehtml"
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=ROOT / "_build" / "pdf",
        help="folder for book.pdf and reference.pdf",
    )
    parser.add_argument(
        "--copy-to",
        type=pathlib.Path,
        default=ROOT / "_build" / "html",
        help="also copy the PDFs into this built HTML book, if it exists",
    )
    args = parser.parse_args(argv)
    reports = print_pdf(args.html, args.out)
    for volume, report in reports.items():
        out = args.out / f"{volume}.pdf"
        print(f"{volume}: links {report['counts']}")
        print(f"PDF written: {out} ({out.stat().st_size / 1e6:.1f} MB)")
        if (args.copy_to / "index.html").exists():
            shutil.copyfile(out, args.copy_to / out.name)
            print(f"copied to {args.copy_to / out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
