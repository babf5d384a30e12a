"""Write the API reference page, book/api.md, from pglib itself: the top-level names ``import pglib``
re-exports (``pglib.EXPORTS``), then one section per layer (``pglib.LAYERS``, bottom first) and
one sub-section per module, its docstring and members filled in by Sphinx autodoc at build time.

    python tools/api_page.py           # rewrite book/api.md
    python tools/api_page.py --check   # exit 1 if book/api.md is not what this would write
"""

from __future__ import annotations

import importlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pglib  # noqa: E402

PAGE = ROOT / "book" / "api.md"

HEAD = """# API reference

Every public function and class of `pglib`, generated from its docstring (the same text
that `help()` prints). The top level comes first: what `import pglib` gives. Then one
section per layer of the library, bottom first (ARCHITECTURE.md in the repository explains
the layers and the rule that a module imports only from its own layer or the ones below).
This page is written by `tools/api_page.py`.

## The top level

`import pglib` is cheap: each of these names imports its module on first use, and every
module below is also an attribute (`pglib.exact`, `pglib.stats`, ...). Modules that moved
stay importable under their old names for one release (`pglib.MOVED`).

```{eval-rst}
.. autosummary::

"""


def _folder_modules(package: str) -> list[str]:
    """The modules of a folder, in the order its docstring lists them."""
    doc = importlib.import_module(f"pglib.{package}").__doc__ or ""
    present = sorted(p.stem for p in (ROOT / "pglib" / package).glob("*.py") if p.stem != "__init__")
    listed = [m for m in dict.fromkeys(re.findall(rf"pglib\.{package}\.(\w+)", doc)) if m in present]
    return listed + [m for m in present if m not in listed]


def _section(module: str, members: bool = True) -> str:
    opts = "\n   :members:" if members else ""
    return f"### `{module}`\n\n```{{eval-rst}}\n.. automodule:: {module}{opts}\n```\n"


def page() -> str:
    out = [HEAD + "".join(f"   ~{module}.{name}\n" for name, module in pglib.EXPORTS.items()) + "```\n",
           "```{eval-rst}\n.. automodule:: pglib\n```\n"]
    for name, modules, what in pglib.LAYERS:
        out.append(f"## {name[0].upper()}{name[1:]}\n\n{what[0].upper()}{what[1:]}.\n")
        for m in modules:
            if (ROOT / "pglib" / m).is_dir():
                out.append(_section(f"pglib.{m}", members=False))
                out += [_section(f"pglib.{m}.{sub}") for sub in _folder_modules(m)]
            else:
                out.append(_section(f"pglib.{m}", members=name != "aliases"))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = page()
    if "--check" in argv:
        if PAGE.read_text() != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python tools/api_page.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
