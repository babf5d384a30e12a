"""The claims ledger: registry and notebooks agree in both directions, the book's false-alarm
arithmetic holds (every check states its rate; each chapter spends at most 0.1%, the book 1%),
and the appendix is current."""

import pytest

import ledger


@pytest.fixture(scope="module")
def found():
    return ledger.collect()


@pytest.fixture(scope="module")
def entries():
    return ledger.registry()


def test_every_registered_claim_is_checked_by_a_cell(entries, found):
    missing = [e["id"] for e in entries if e["id"] not in found]
    assert not missing, f"registered in book/claims.yml but checked by no notebook cell: {missing}"


def test_every_checked_claim_is_registered(entries, found):
    known = {e["id"] for e in entries}
    extra = sorted(set(found) - known)
    assert not extra, (f"checked in a notebook but missing from book/claims.yml: {extra} "
                       "(python tools/ledger.py --unregistered prints stubs)")


def test_registered_chapter_is_the_checking_chapter(entries, found):
    wrong = {e["id"]: (e["chapter"], found[e["id"]]["chapter"]) for e in entries
             if e["id"] in found and found[e["id"]]["chapter"] != e["chapter"]}
    assert not wrong, f"claims registered under another chapter than the one checking them: {wrong}"


def test_ids_are_unique(entries):
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))


def test_every_claim_passes(found):
    failing = {cid: f["measured"] for cid, f in found.items() if f["status"] != "PASS"}
    assert not failing


def test_each_chapter_has_a_negative_control(entries):
    chapters = {e["chapter"] for e in entries}
    controls = {e["chapter"] for e in entries if e["evidence"] == "negative control"}
    assert chapters == controls, f"chapters without a negative control: {sorted(chapters - controls)}"


def test_ledger_page_is_current(entries, found):
    assert ledger.LEDGER.read_text() == ledger.render(entries, found) + "\n", "book/ledger.md is stale: python tools/ledger.py --write"


def test_every_check_states_its_fail_rate(found):
    missing = sorted(cid for cid, f in found.items() if ledger.fail_rate(f) is None)
    assert not missing, f"claim lines without a record (re-execute the notebook): {missing}"


def test_every_no_bias_test_states_its_power(found):
    weak = sorted(cid for cid, f in found.items() if (f.get("record") or {}).get("kind") == "unbiased"
                  and f["record"].get("detectable_bias_worst") is None and "nothing varies" not in f["measured"])
    assert not weak, f"no-bias tests without a detectable bias: {weak}"


def test_false_alarm_budget_arithmetic(found):
    spent = ledger.budget(found)
    over = {ch: s for ch, s in spent.items() if s > ledger.CHAPTER_BUDGET * (1 + 1e-9)}
    assert not over, f"chapters over their {ledger.CHAPTER_BUDGET:.1%} budget: {over}"
    # The book's union bound is the sum of what the chapters spend (not one full slot per
    # chapter: with the PPO chapter there are more chapters than 1% / 0.1%).
    assert sum(spent.values()) <= ledger.BOOK_BUDGET, f"the chapters spend {sum(spent.values()):.3%}"


def test_each_chapter_checks_its_budget(found):
    chapters = {f["chapter"] for f in found.values()}
    checked = {f["chapter"] for f in found.values() if (f.get("record") or {}).get("kind") == "budget"}
    assert chapters == checked, f"chapters without a within_budget check: {sorted(chapters - checked)}"


def test_no_cell_is_meant_to_raise(chapter):
    """Refusals are claims (claims.raises), so papermill and nbconvert run every notebook."""
    import notebooks

    name, nb = chapter
    tagged = [i for i, cell in notebooks.code_cells(nb) if "raises-exception" in notebooks.tags(cell)]
    assert not tagged, f"{name}: cells {tagged} carry the raises-exception tag; use claims.raises instead"
