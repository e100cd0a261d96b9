"""LIST wildcard matching (RFC 3501 §6.3.8): the same answers as a regular expression, in linear time."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dizimail.codec.imap.wildcard import MailboxPattern, PatternSet


def reference(pattern: str, name: str) -> bool:
    """The obvious (backtracking) translation, for small inputs only."""
    regex = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern)
    if pattern[:5].upper() == "INBOX":
        regex = "(?i:INBOX)" + "".join(re.escape(ch) if ch not in "*%" else (".*" if ch == "*" else "[^/]*")
                                       for ch in pattern[5:])
    return re.fullmatch(regex, name, re.DOTALL) is not None


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("*", "INBOX", True),
    ("*", "a/b/c", True),
    ("%", "a", True),
    ("%", "a/b", False),
    ("a/%", "a/b", True),
    ("a/%", "a/b/c", False),
    ("a/*", "a/b/c", True),
    ("a%", "abc", True),
    ("a%c", "abxc", True),
    ("a%c", "ab/c", False),
    ("inbox", "INBOX", True),
    ("InBoX/%", "INBOX/Sent", True),
    ("inbox/sent", "INBOX/Sent", False),  # only INBOX itself is case-insensitive
    ("Sent", "sent", False),
    ("", "", True),
    ("", "a", False),
    ("*%*%x", "abc/dx", True),
    ("%*", "a/b", True),  # a run holding * is *
    ("%%", "a/b", False),
    ("*/", "a/", True),
    ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "aXXcYYb", False),
])
def test_wildcards_match_as_rfc_3501_says(pattern, name, expected):
    assert MailboxPattern(pattern).match(name) is expected
    assert reference(pattern, name) is expected


@given(st.sampled_from(["", "INBOX", "inbox", "InBoX"]), st.text(alphabet="ab/*%", max_size=8),
       st.sampled_from(["", "INBOX", "inbox"]), st.text(alphabet="ab/", max_size=10))
def test_matcher_agrees_with_a_regular_expression(pattern_head, pattern, name_head, name):
    """All three ways of matching (only *, only %, both) give the regular expression's answer."""
    pattern, name = pattern_head + pattern, name_head + name
    assert MailboxPattern(pattern).match(name) == reference(pattern, name)


def test_hostile_pattern_against_a_500_character_name_is_linear():
    """`*a*a*a*b` against 500 × "a": a backtracking regex takes seconds (50 wildcards: forever); the
    automaton takes one step per character (the protocol test shows other clients are not held up)."""
    name = "a" * 500
    assert not MailboxPattern("*a*a*a*b").match(name)
    assert not MailboxPattern("*a" * 50 + "*b").match(name)
    assert MailboxPattern("*a" * 50 + "*").match(name)


def test_twenty_star_percent_pairs_collapse_to_one_star():
    names = [f"box{i}" for i in range(11)]
    patterns = PatternSet(["*%" * 20 + "x"])
    assert patterns.matching(names) == set()
    assert PatternSet(["*%" * 20 + "4"]).matching(names) == {"box4"}


def test_pattern_with_more_literals_than_the_name_is_refused_at_once():
    assert not MailboxPattern("%" + "x%" * 5000).match("xx")


def test_pattern_set_matches_any_of_its_patterns():
    patterns = PatternSet(["Sent", "Arch%"])
    assert patterns.matching(["Sent", "Archive", "Archive/2024", "Drafts"]) == {"Sent", "Archive"}
