"""Every chapter ends with checked exercises.

For each chapter notebook ``book/NN_*.ipynb``:

- the last ``## `` section is ``## Exercises``, with 2 or 3 numbered exercises, followed only by
  ``## The chapter's false-alarm budget``: one code cell that adds up the fail rates of every
  check, the exercises' included (``claims.within_budget``), so it must come after them;
- each exercise has one solution: a code cell tagged ``solution`` and ``hide-cell`` (rendered collapsed),
  after the heading, in order;
- every solution has an execution count and stored outputs, and its outputs contain the claim line
  ``PASS [exercise.<chapter>.<n>] ...`` for its own number ``n``. nbval runs every solution and compares
  these outputs, so a solution that no longer reaches its answer fails the notebook tests;
- nothing stops nbval from running a solution (no ``nbval-skip`` / ``raises-exception`` tags), and every
  code cell after the heading is a solution (an untagged one would show its answer uncollapsed);
- ``<chapter>`` is the same word for all of a chapter's exercises and is not used by another chapter.
"""

from __future__ import annotations

import json
import re

import pytest

from notebooks import CHAPTERS, output_text, source, tags

EXERCISES = re.compile(r"^##\s+Exercises\s*$", re.M)
BUDGET = re.compile(r"^##\s+The chapter's false-alarm budget\s*$", re.M)
H2 = re.compile(r"^##\s+\S", re.M)
ITEM = re.compile(r"^(\d+)\.\s+\S", re.M)
CLAIM = re.compile(r"^PASS \[exercise\.([a-z0-9_]+)\.(\d+)((?:\.[a-z0-9_]+)*)\] ", re.M)
REQUIRED_TAGS = {"solution", "hide-cell"}
BLOCKING_TAGS = {"nbval-skip", "raises-exception", "skip-execution", "remove-cell"}


def cell_output_text(cell: dict) -> str:
    return "\n".join(output_text(output) for output in cell.get("outputs", []))


def exercises_section(nb: dict) -> tuple[int, list[dict]]:
    """(index of the markdown cell with '## Exercises', the cells after it); (-1, []) when absent."""
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown" and EXERCISES.search(source(cell)):
            after = nb["cells"][index + 1:]
            end = budget_section(nb)
            return index, after if end < 0 else nb["cells"][index + 1:end]
    return -1, []


def budget_section(nb: dict) -> int:
    """Index of the markdown cell '## The chapter's false-alarm budget', or -1."""
    return next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"
                 and BUDGET.search(source(c))), -1)


def solution_claims(cell: dict) -> list[tuple[str, int, str]]:
    """(chapter word, number, suffix) of every exercise claim line in a cell's outputs."""
    return [(m.group(1), int(m.group(2)), m.group(3)) for m in CLAIM.finditer(cell_output_text(cell))]


def test_chapter_ends_with_exercises(chapter):
    name, nb = chapter
    index, after = exercises_section(nb)
    assert index >= 0, f"{name}: no '## Exercises' section"
    heading_cell = source(nb["cells"][index])
    tail = "\n".join([heading_cell[EXERCISES.search(heading_cell).end():]]
                     + [source(c) for c in after if c["cell_type"] == "markdown"])
    assert not H2.search(tail), f"{name}: another '## ' section follows '## Exercises'; the exercises must come last"
    numbers = sorted({int(n) for n in ITEM.findall(tail)})
    assert 2 <= len(numbers) <= 3 and numbers == list(range(1, len(numbers) + 1)), (
        f"{name}: expected 2-3 exercises numbered 1., 2., (3.) after '## Exercises'; found numbers {numbers}"
    )


def test_solutions_are_tagged_hidden_and_run(chapter):
    name, nb = chapter
    index, after = exercises_section(nb)
    if index < 0:
        pytest.fail(f"{name}: no '## Exercises' section", pytrace=False)
    tagged_before = [i for i, c in enumerate(nb["cells"][:index]) if c["cell_type"] == "code" and "solution" in tags(c)]
    assert not tagged_before, f"{name}: cells {tagged_before} are tagged 'solution' but come before '## Exercises'"
    code = [(index + 1 + i, c) for i, c in enumerate(after) if c["cell_type"] == "code" and source(c).strip()]
    problems = []
    for i, cell in code:
        missing = REQUIRED_TAGS - tags(cell)
        if missing:
            problems.append(f"cell {i}: lacks the tag(s) {sorted(missing)} (every code cell after '## Exercises' is a "
                            "solution, tagged 'solution' and 'hide-cell')")
        blocking = BLOCKING_TAGS & tags(cell)
        if blocking:
            problems.append(f"cell {i}: tagged {sorted(blocking)}, so nbval would not check this solution")
        if cell.get("execution_count") is None or not cell.get("outputs"):
            problems.append(f"cell {i}: no execution count or no stored outputs (run the notebook: make execute)")
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)
    assert 2 <= len(code) <= 3, f"{name}: expected 2-3 solution cells after '## Exercises', found {len(code)}"


def test_each_solution_checks_its_own_claim(chapter):
    name, nb = chapter
    index, after = exercises_section(nb)
    if index < 0:
        pytest.fail(f"{name}: no '## Exercises' section", pytrace=False)
    solutions = [(index + 1 + i, c) for i, c in enumerate(after) if c["cell_type"] == "code" and "solution" in tags(c)]
    assert solutions, f"{name}: no solution cells"
    problems, words = [], set()
    for n, (i, cell) in enumerate(solutions, start=1):
        found = solution_claims(cell)
        words |= {w for w, _, _ in found}
        if not any(number == n and suffix == "" for _, number, suffix in found):
            got = [f"exercise.{w}.{k}{s}" for w, k, s in found]
            problems.append(f"solution {n} (cell {i}) has no 'PASS [exercise.<chapter>.{n}]' line in its outputs "
                            f"(exercise claims found: {got}); end it with a pglib.claims check with that id")
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)
    assert len(words) == 1, f"{name}: exercise claim ids use several chapter words {sorted(words)}; use one"


def test_chapter_words_are_distinct():
    owner: dict[str, list[str]] = {}
    for path in CHAPTERS:
        nb = json.loads(path.read_text())
        _, after = exercises_section(nb)
        for cell in after:
            for word, _, _ in solution_claims(cell):
                owner.setdefault(word, [])
                if path.stem not in owner[word]:
                    owner[word].append(path.stem)
    shared = {w: stems for w, stems in owner.items() if len(stems) > 1}
    assert not shared, f"exercise.<chapter> words used by more than one chapter: {shared}"


def test_chapter_closes_with_its_budget(chapter):
    """After the exercises, one section adds up every check's fail rate (pglib.claims.within_budget)."""
    name, nb = chapter
    index = budget_section(nb)
    assert index >= 0, f"{name}: no '## The chapter's false-alarm budget' section after the exercises"
    tail = nb["cells"][index:]
    assert not any(H2.search(source(c)) for c in tail[1:] if c["cell_type"] == "markdown"), (
        f"{name}: a section follows the budget section")
    code = [c for c in tail if c["cell_type"] == "code"]
    assert len(code) == 1 and "claims.within_budget(" in source(code[0]), (
        f"{name}: the budget section must hold exactly one code cell calling claims.within_budget")
    assert exercises_section(nb)[0] < index, f"{name}: the budget section comes before the exercises"
