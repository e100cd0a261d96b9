"""The Sieve interpreter's own rules (issue #12): compile errors with their place, what is refused, the
limits that keep a script's faults from losing mail, and ``:matches`` against a reference."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dizimail.services.sieve import CompileError, compile_script, run
from dizimail.services.sieve.match import captures
from dizimail.services.sieve.match import matches as _matches

MAIL = b"From: a@b.test\r\nTo: c@d.test\r\nSubject: hello\r\n\r\nbody\r\n"


def test_a_syntax_error_names_its_line_and_column():
    with pytest.raises(CompileError) as caught:
        compile_script('require "fileinto";\nif header :is "subject" "x" {\n  bogus "y";\n}\n')
    assert caught.value.line == 3 and caught.value.column > 0 and "bogus" in str(caught.value)


@pytest.mark.parametrize("script, why", [
    ('fileinto "x";', "fileinto"),  # used without its require
    ('require "include"; include "other";', "include"),  # not supported yet: refused when stored
    ('require "vacation"; vacation :days "x" "away";', "number"),
    ('require "fileinto"; fileinto :copy "x";', "copy"),  # a tag whose extension was not required
    ('if header :is :is "subject" "x" { keep; }', "twice"),
    ('if header :is :contains "subject" "x" { keep; }', "cannot be used"),
    ('if header "subject" { keep; }', "takes 2 arguments"),
    ('if true { keep; } else { stop; } else { keep; }', "without an if"),
    ('keep; require "fileinto";', "require must come before"),
    ('if true keep;', "needs a block"),
    ('if true { keep; ', "'}' was expected before the end"),
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
    return _reference_captures(text, pattern) is not None


@settings(max_examples=400, derandomize=True)
@given(st.text("ab*?\\", max_size=8), st.text("ab", max_size=10))
def test_matches_agrees_with_a_reference(pattern, text):
    assert _matches(text, pattern) == _reference(text, pattern)


def test_matches_on_a_long_hostile_subject_answers():
    """A pattern that makes a backtracking matcher explode; ours walks the text once (states, not paths)."""
    assert not _matches("a" * 20_000 + "b", "*a*a*a*a*a*a*a*a*c")
    assert _matches("a" * 20_000 + "c", "*a*a*a*a*a*a*a*a*c")


def _reference_captures(text: str, pattern: str) -> list[str] | None:
    """Match variables by a backtracking regex whose lazy groups try the same choices in the same order:
    each ``*`` first takes as little as it can (RFC 5229 §3.2's example: "[*] *")."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
            continue
        out += "(.*?)" if ch == "*" else "(.)" if ch == "?" else re.escape(ch)
        i += 1
    found = re.fullmatch(out, text, re.DOTALL)
    return None if found is None else [text, *found.groups()][:10]


@settings(max_examples=400, derandomize=True)
@given(st.text("ab*?\\", max_size=8), st.text("ab", max_size=10))
def test_match_variables_agree_with_a_reference(pattern, text):
    assert captures(text, pattern) == _reference_captures(text, pattern)


def test_match_variables_of_the_rfc_example_and_a_hostile_subject():
    assert captures("[acme-users] [fwd] version 1.0 is out", "[*] *") == [
        "[acme-users] [fwd] version 1.0 is out", "acme-users", "[fwd] version 1.0 is out"]
    assert captures("a" * 20_000 + "b", "*a*a*a*a*a*a*a*a*c") is None  # linear: threads, not paths


def test_variables_are_bounded_and_expanded_once():
    script = compile_script('require ["variables", "fileinto"];\nset "a" "${b}";\nset "b" "x";\n'
                            'set "c" "${a}${b}";\nfileinto "${c}-${{}";\n')
    assert [s.mailbox for s in run(script, MAIL, "a@b.test", "c@d.test").stores] == ["x-${{}"]
    many = compile_script('require "variables";\n' + "".join(f'set "v{i}" "x";\n' for i in range(300)))
    assert "variables" in run(many, MAIL, "a@b.test", "c@d.test").error
    long = compile_script('require ["variables", "fileinto"];\nset "a" "0123456789";\n'
                          + "".join('set "a" "${a}${a}";\n' for _ in range(12)) + 'fileinto "${a}";\n')
    assert len(run(long, MAIL, "a@b.test", "c@d.test").stores[0].mailbox) == 4096


def test_grammar_limits_and_places():
    deep = "if true { " * 40 + "keep;" + " }" * 40
    with pytest.raises(CompileError) as caught:
        compile_script(deep)
    assert "nested" in str(caught.value)
    with pytest.raises(CompileError) as caught:
        compile_script('require "fileinto";\n\n  fileinto "unclosed;\n')
    assert (caught.value.line, caught.value.column) == (3, 12) and "not closed" in str(caught.value)
    with pytest.raises(CompileError) as caught:
        compile_script("/* a comment that never ends\nkeep;")
    assert "comment" in str(caught.value)
