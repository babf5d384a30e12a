"""The setup cell every chapter notebook starts with, generated from ``_config.yml``.

The repository address lives once, in ``_config.yml``; this module turns it into
the notebook's first code cell. ``python tools/setup_cell.py --write book/*.ipynb``
rewrites the cell in place; ``tests/test_setup_cell.py`` checks every notebook.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:  # tests/notebooks.py: the one notebook reader
    sys.path.insert(0, str(ROOT / "tests"))

from notebooks import code_cells  # noqa: E402
DISTRIBUTION = "policy-gradients-executable"
TAG = "setup"
# Collapsed in the HTML book (readers see a "show code" toggle); the cell still runs everywhere.
EXTRA_TAGS = ["hide-input"]


def repository(config: pathlib.Path = ROOT / "_config.yml") -> tuple[str, str]:
    """(url, branch) of the repository, read from ``_config.yml`` without a YAML dependency."""
    text = config.read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)+)", text, re.M)
    if block is None:
        raise ValueError(f"{config}: no 'repository:' section")
    fields = dict(re.findall(r"^\s+(\w+):\s*\"?([^\"\n#]*?)\"?\s*(?:#.*)?$", block.group(1), re.M))
    return fields["url"].rstrip("/"), fields.get("branch", "main") or "main"


def setup_cell_source(config: pathlib.Path = ROOT / "_config.yml") -> str:
    url, branch = repository(config)
    return f'''# Setup, the same in every chapter: install pglib when it is missing (e.g. on Colab).
# Set PGLIB_SOURCE to a local checkout to install from there instead.
import os, subprocess, sys

try:
    import pglib.exact  # our pglib; an unrelated PyPI package is also called "pglib"
except ImportError:
    for name in [m for m in sys.modules if m.split(".")[0] == "pglib"]:
        del sys.modules[name]
    repo = "{url}"
    default = f"{DISTRIBUTION} @ git+{{repo}}@{branch}"
    source = os.environ.get("PGLIB_SOURCE", default)
    # pip keeps an installed torch: pglib's own requirements are loose ranges.
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + [source], check=True)
    import importlib

    importlib.invalidate_caches()
    import pglib.exact'''


def first_code_cell(nb: dict) -> dict | None:
    return next((cell for _, cell in code_cells(nb)), None)


def write(path: pathlib.Path) -> bool:
    """Make the first code cell of ``path`` the setup cell. Returns True if the file changed."""
    nb = json.loads(path.read_text())
    cell = first_code_cell(nb)
    want = setup_cell_source()
    if cell is not None and TAG in cell.get("metadata", {}).get("tags", []):
        tags = cell["metadata"]["tags"]
        missing = [t for t in EXTRA_TAGS if t not in tags]
        if "".join(cell["source"]) == want and not missing:
            return False
        cell["source"] = want.splitlines(keepends=True)
        tags.extend(missing)
    else:
        new = {"cell_type": "code", "execution_count": None, "id": "setup", "metadata": {"tags": [TAG, *EXTRA_TAGS]},
               "outputs": [], "source": want.splitlines(keepends=True)}
        index = nb["cells"].index(cell) if cell is not None else len(nb["cells"])
        nb["cells"].insert(index, new)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the setup cell in place")
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    args = parser.parse_args(argv)
    if not args.write:
        print(setup_cell_source())
        return 0
    for nb in args.notebooks:
        if write(nb):
            print(f"updated {nb}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
