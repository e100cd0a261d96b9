"""The Sieve interpreter's own rules (issue #12): compile errors with their place, what is refused, the
limits that keep a script's faults from losing mail, and ``:matches`` against a reference."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dizimail.services.sieve import CompileError, compile_script, run
from dizimail.services.sieve.interpret import _matches

MAIL = b"From: a@b.test\r\nTo: c@d.test\r\nSubject: hello\r\n\r\nbody\r\n"


def test_a_syntax_error_names_its_line_and_column():
    with pytest.raises(CompileError) as caught:
        compile_script('require "fileinto";\nif header :is "subject" "x" {\n  bogus "y";\n}\n')
    assert caught.value.line == 3 and caught.value.column > 0 and "bogus" in str(caught.value)


@pytest.mark.parametrize("script, why", [
    ('fileinto "x";', "fileinto"),  # used without its require
    ('require "vacation"; vacation "away";', "vacation"),  # not supported yet: refused when stored
    ('if header :regex "subject" "x" { keep; }', "regex"),
    ('if header :is :comparator "i;ascii-numeric" "subject" "1" { keep; }', "comparator"),
    ("x" * (64 * 1024 + 1), "larger"),
])
def test_what_we_do_not_run_is_refused_when_stored(script, why):
    with pytest.raises(CompileError) as caught:
        compile_script(script)
    assert why in str(caught.value)


def test_too_many_actions_keep_the_message_in_the_inbox_and_say_why():
    script = compile_script('require "fileinto";\n' + "".join(f'fileinto "f{i}";\n' for i in range(40)))
    outcome = run(script, MAIL, "a@b.test", "c@d.test")
    assert outcome.implicit_keep and not outcome.stores and "actions" in outcome.error
    redirects = compile_script("".join(f'redirect "r{i}@x.test";' for i in range(5)))
    outcome = run(redirects, MAIL, "a@b.test", "c@d.test")
    assert outcome.implicit_keep and not outcome.redirects and "redirects" in outcome.error


def test_text_blocks_and_escapes_are_read_as_rfc_5228_says():
    script = compile_script('require "reject";\nreject text:\nline one\n..two\n.\n;\n')
    assert run(script, MAIL, "", "c@d.test").reject == "line one\n.two\n"
    quoted = compile_script('if header :is "subject" "he\\\\llo" { discard; }')
    assert not run(quoted, MAIL, "", "c@d.test").discarded  # "\\\\" is one backslash: not "hello"


def _reference(text: str, pattern: str) -> bool:
    """:matches as a regular expression (fine for the short strings generated here)."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
            continue
        out += ".*" if ch == "*" else "." if ch == "?" else re.escape(ch)
        i += 1
    return re.fullmatch(out, text, re.DOTALL) is not None


@settings(max_examples=400, derandomize=True)
@given(st.text("ab*?\\", max_size=8), st.text("ab", max_size=10))
def test_matches_agrees_with_a_reference(pattern, text):
    assert _matches(text, pattern) == _reference(text, pattern)


def test_matches_on_a_long_hostile_subject_answers():
    """A pattern that makes a backtracking matcher explode; ours walks the text once (states, not paths)."""
    assert not _matches("a" * 20_000 + "b", "*a*a*a*a*a*a*a*a*c")
    assert _matches("a" * 20_000 + "c", "*a*a*a*a*a*a*a*a*c")
