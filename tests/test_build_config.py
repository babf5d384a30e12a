"""Fast checks of the book's build configuration (no build needed).

- every extension in ``_config.yml`` imports (the offline MathJax one has hyphens in its name);
- every file in ``_toc.yml`` exists, and every chapter notebook is in the toc
  (``only_build_toc_files: true`` would otherwise drop it silently);
- every citation key used in the book is in ``book/references.bib``;
- the Makefile never exports MPLBACKEND (kernels would then draw no inline figures).
"""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def toc_files(node) -> list[str]:
    if isinstance(node, dict):
        found = [node[k] for k in ("file", "root") if k in node]
        return found + [f for v in node.values() for f in toc_files(v)]
    if isinstance(node, list):
        return [f for item in node for f in toc_files(item)]
    return []


@pytest.mark.parametrize("name", CONFIG["sphinx"]["extra_extensions"])
def test_extensions_import(name):
    importlib.import_module(name)


def test_mathjax_is_offline():
    assert "sphinx-mathjax-offline" in CONFIG["sphinx"]["extra_extensions"]
    config = CONFIG["sphinx"].get("config", {})
    assert "mathjax_path" not in config, "mathjax_path would override the offline MathJax"


def test_toc_files_exist_and_every_notebook_is_listed():
    listed = toc_files(TOC)
    missing = [f for f in listed if not any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb"))
               and not (ROOT / f).exists()]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    stems = {pathlib.Path(f).with_suffix("").as_posix() for f in listed}
    unlisted = [nb.name for nb in sorted((ROOT / "book").glob("*.ipynb")) if f"book/{nb.stem}" not in stems]
    assert not unlisted, f"notebooks not in _toc.yml (the build would skip them): {unlisted}"
    assert "book/references" in stems, "book/references.md (the bibliography page) is not in _toc.yml"


def test_citations_are_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", bib, re.M))
    assert len(keys) == len(re.findall(r"^@\w+\{", bib, re.M)), "a bibliography entry has no key"
    used: dict[str, set[str]] = {}
    for path in sorted((ROOT / "book").glob("*")):
        if path.suffix not in (".md", ".ipynb"):
            continue
        for group in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", path.read_text()):
            for key in re.split(r"[,;]\s*", group):
                used.setdefault(key.strip(), set()).add(path.name)
    unknown = {k: sorted(v) for k, v in used.items() if k not in keys}
    assert not unknown, f"citation keys missing from book/references.bib: {unknown}"


def test_makefile_does_not_export_mplbackend():
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"^\s*export\s+MPLBACKEND", makefile, re.M)
