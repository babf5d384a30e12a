"""The API reference (book/api.md) covers what pglib offers, and nothing that is gone.

The page is written by hand (Sphinx autodoc fills in the docstrings at build time), so a
new module or a new top-level name would silently be left out. This checks that

- every module ``pglib/**/*.py`` (subpackages included) has its ``automodule`` section, and
  every section names a module that exists;
- the top-level table lists exactly the names ``import pglib`` re-exports, each from the
  module that defines it.
"""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = (ROOT / "book" / "api.md").read_text()


def test_every_module_has_a_section():
    modules = set()
    for p in (ROOT / "pglib").rglob("*.py"):
        parts = p.relative_to(ROOT / "pglib").with_suffix("").parts
        if parts == ("__init__",):
            continue
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    documented = set(re.findall(r"^\.\. automodule:: pglib\.([\w.]+)$", PAGE, re.M))
    assert documented == modules, (
        f"book/api.md: modules without a section {sorted(modules - documented)}, "
        f"sections of missing modules {sorted(documented - modules)}")


def test_top_level_table_is_the_top_level():
    import pglib

    listed = re.findall(r"^   ~(pglib\.[\w.]+)$", PAGE, re.M)
    expected = [f"{module}.{name}" for name, module in pglib.EXPORTS.items()]
    assert sorted(listed) == sorted(expected), (
        f"book/api.md's top-level table {listed} is not pglib's re-exports {expected}")


def test_the_page_is_what_the_generator_writes():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "tools" / "api_page.py"), "--check"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
