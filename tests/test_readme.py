"""The README's "Check your own code" example runs and says what it promises; `import pglib` is cheap."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Check your own code", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section must hold exactly one python example"
    return blocks[0]


def test_readme_example_runs_and_reports_the_bias():
    code = _example()
    assert len(code.strip().splitlines()) <= 12
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("loss check: biased"), out.stdout
    assert "gamma^t" in out.stdout  # the closest known mistake: the dropped discount


def test_import_pglib_loads_no_heavy_dependency():
    code = ("import sys, time; t = time.perf_counter(); import pglib; dt = time.perf_counter() - t; "
            "print(dt, *[m for m in ('torch', 'gymnasium', 'matplotlib', 'scipy', 'tqdm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == [], f"import pglib imported {out[1:]}"
    assert float(out[0]) < 0.5, f"import pglib took {out[0]} s"


def test_top_level_names_resolve():
    import pglib

    for name in pglib.__all__:
        assert getattr(pglib, name) is not None, name
