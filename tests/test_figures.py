"""Figures sharp enough for a high-density screen and for paper: at least 200 dpi, or SVG.

A figure's resolution is the dots per inch written into its PNG (the ``pHYs`` chunk that
matplotlib fills from ``savefig.dpi``). The chapters' figures get 200 dpi from
``book/matplotlibrc`` (matplotlib reads it in the folder the notebooks run in); the
figures drawn by the tools (``tools/idea_figures.py``, ``tools/calibration.py``,
``tools/audit_report.py``) save at 200 dpi. Checked here without a kernel or a build:

- every ``image/png`` output stored in a chapter notebook;
- every PNG under ``book/figures`` (SVG is resolution-free and passes).

The pixel count is checked as well: a PNG that claims 200 dpi but was drawn at 100 and
resampled would be as blurry as before, so the width in pixels must be at least 200 times
a plausible printed width (3 inches).
"""

from __future__ import annotations

import base64
import io
import json
import pathlib

import pytest
from PIL import Image

from notebooks import BOOK, CHAPTERS

MIN_DPI = 200
MIN_INCHES = 3.0


def _dpi(image: Image.Image) -> float:
    return float(image.info.get("dpi", (0.0, 0.0))[0])


def notebook_figures() -> list[tuple[str, bytes]]:
    found = []
    for path in CHAPTERS:
        for k, cell in enumerate(json.loads(path.read_text())["cells"]):
            for out in cell.get("outputs", []):
                png = out.get("data", {}).get("image/png")
                if png:
                    data = "".join(png) if isinstance(png, list) else png
                    found.append((f"{path.name} cell {k}", base64.b64decode(data)))
    return found


def file_figures() -> list[tuple[str, bytes]]:
    return [(p.relative_to(BOOK).as_posix(), p.read_bytes()) for p in sorted((BOOK / "figures").glob("*.png"))]


def test_there_are_figures():
    assert len(notebook_figures()) >= 9, "fewer than one figure per chapter: is the book's folder right?"


@pytest.mark.parametrize("name,data", notebook_figures() + file_figures(), ids=lambda v: v if isinstance(v, str) else "")
def test_figure_is_at_least_200_dpi(name, data):
    image = Image.open(io.BytesIO(data))
    dpi = _dpi(image)
    assert dpi >= MIN_DPI - 0.5, (
        f"{name}: {dpi:.0f} dpi (want >= {MIN_DPI}); re-execute the notebook in book/ "
        f"(book/matplotlibrc sets figure.dpi) or save the file with dpi={MIN_DPI}")
    assert image.width >= MIN_DPI * MIN_INCHES, f"{name}: only {image.width} px wide"


def test_svg_figures_are_svg():
    for p in sorted((BOOK / "figures").glob("*.svg")):
        assert p.read_text()[:400].lstrip().startswith(("<?xml", "<svg")), f"{p.name} is not SVG text"
