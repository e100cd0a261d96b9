"""Mailbox hierarchy helpers: set lookups instead of scans of every name."""

from __future__ import annotations

from dizimail.services.folders import superiors, within


def test_superiors_are_every_proper_parent_once():
    assert superiors(["a/b/c", "a/b/d", "x", "a/e"]) == {"a", "a/b"}
    assert superiors([]) == set()


def test_within_a_subtree_is_the_name_or_one_of_its_parents():
    roots = frozenset({"Lists", "Work/2024"})
    assert within("Lists", roots)
    assert within("Lists/ietf/imap", roots)
    assert within("Work/2024/q1", roots)
    assert not within("Work", roots)
    assert not within("Listserv", roots)  # a prefix, not a parent
