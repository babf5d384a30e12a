"""Code that fits the page: no line of a notebook's code or text output is wider than 88.

88 characters is what a code cell of the built page shows at the default font without
scrolling sideways (``book/_static/widths.css`` keeps it so at every window width),
and what the printed PDF (``make pdf``) shows without wrapping. For every
notebook in ``book/``, this checks every line of

- every code cell's source, and
- every text output: streams (``print``), ``text/plain`` results and displays, and the
  lines of error tracebacks (ANSI colour codes removed, tabs expanded).

Images, HTML and other rich outputs are laid out by the browser and do not count.
A browser test (run by ``make test`` after the build) checks the other half in the
built page: at window widths from 1024 to 1920 pixels, 88 characters of code fit a
code cell.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from notebooks import BOOK, code_cells, output_text, source

MAX_WIDTH = 88
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _width(line: str) -> int:
    return len(ANSI.sub("", line).expandtabs(8))


def _output_lines(output: dict) -> list[str]:
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", [])).splitlines()
    return output_text(output).splitlines()


def too_wide(nb: dict) -> list[str]:
    """One line per offending line: where it is, how wide, and how it starts."""
    found = []
    for index, cell in code_cells(nb):
        where = f"cell {index}"
        for number, line in enumerate(source(cell).splitlines(), 1):
            if _width(line) > MAX_WIDTH:
                found.append(f"{where} source line {number}: {_width(line)} chars: {line[:60]!r}")
        for k, output in enumerate(cell.get("outputs", [])):
            for number, line in enumerate(_output_lines(output), 1):
                if _width(line) > MAX_WIDTH:
                    text = ANSI.sub("", line)
                    found.append(f"{where} output {k} line {number}: {_width(line)} chars: {text[:60]!r}")
    return found


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks under {BOOK}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(BOOK).as_posix())
def test_lines_fit_the_page(path: pathlib.Path):
    found = too_wide(json.loads(path.read_text()))
    shown = "\n  ".join(found[:25]) + (f"\n  ... and {len(found) - 25} more" if len(found) > 25 else "")
    assert not found, (
        f"{path.name}: {len(found)} lines wider than {MAX_WIDTH} characters (the page's width):\n  {shown}")


def test_the_check_sees_every_kind_of_line():
    """The checker itself, on a notebook with one too-wide line of each kind."""
    wide = "x" * (MAX_WIDTH + 1)
    nb = {"cells": [
        {"cell_type": "markdown", "source": wide},  # prose wraps: not counted
        {"cell_type": "code", "source": ["ok\n", wide], "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["fine\n", wide + "\n"]},
            {"output_type": "execute_result", "data": {"text/plain": wide, "text/html": wide}},
            {"output_type": "error", "traceback": ["\x1b[31m" + "y" * MAX_WIDTH + "\x1b[0m", wide]},
            {"output_type": "display_data", "data": {"image/png": wide}},
        ]},
        {"cell_type": "code", "source": "\t" * 11 + "z", "outputs": []},
    ]}
    found = too_wide(nb)
    assert [f.split(":")[0] for f in found] == [
        "cell 1 source line 2", "cell 1 output 0 line 2", "cell 1 output 1 line 1",
        "cell 1 output 2 line 2", "cell 2 source line 1"], found
    assert too_wide({"cells": [{"cell_type": "code", "source": "x" * MAX_WIDTH, "outputs": []}]}) == []


FIT_JS = """() => {
  const pre = [...document.querySelectorAll('div.cell_input pre')].find((e) => e.offsetWidth > 0);
  const style = getComputedStyle(pre);
  const probe = document.createElement('span');
  probe.textContent = 'x'.repeat(%d);
  Object.assign(probe.style, {font: style.font, whiteSpace: 'pre', position: 'absolute'});
  document.body.appendChild(probe);
  const needed = probe.getBoundingClientRect().width;
  probe.remove();
  const room = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return {needed, room, font: style.fontSize};
}""" % MAX_WIDTH


@pytest.mark.browser
@pytest.mark.parametrize("width", [1024, 1280, 1440, 1920])
def test_88_characters_fit_a_code_cell_in_chromium(width):
    """In the built page, at common window widths, 88 characters of code need no scrolling."""
    import functools
    import http.server
    import os
    import tempfile
    import threading

    from playwright.sync_api import sync_playwright

    html = BOOK.parent / "_build" / "html"
    page_path = html / "book" / f"{sorted(BOOK.glob('[0-9][0-9]_*.ipynb'))[0].stem}.html"
    if not page_path.exists():
        pytest.fail(f"{page_path} is missing: run `make book` first (`make test` builds it)")
    quiet = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, directory=str(html)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                viewport={"width": width, "height": 900})
            context.route("**/*", lambda route: route.continue_()
                          if "127.0.0.1" in route.request.url else route.abort())
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/book/{page_path.name}", wait_until="load")
            fit = page.evaluate(FIT_JS)
            context.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert fit["needed"] <= fit["room"], (
        f"at a {width}px window, {MAX_WIDTH} characters of code need {fit['needed']:.0f}px at "
        f"{fit['font']} but a code cell has {fit['room']:.0f}px (book/_static/widths.css)")
