"""The claims ledger: registry and notebooks agree in both directions, and the appendix is current."""

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
                       "(python tests/ledger.py --unregistered prints stubs)")


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
    assert ledger.LEDGER.read_text() == ledger.render(entries, found) + "\n", "book/ledger.md is stale: python tests/ledger.py --write"
