"""The Sieve interpreter's own rules (issue #12): compile errors with their place, what is refused, the
limits that keep a script's faults from losing mail, and ``:matches`` against a reference."""

from __future__ import annotations

import json
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
    ('require "foreverypoint"; keep;', "foreverypoint"),  # an extension we do not have: refused when stored
    ('require "date"; if date "date" "century" "21" { keep; }', "date part"),
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


def test_include_runs_the_users_other_scripts_with_their_own_variables_and_shared_globals():
    library = {
        "lists": compile_script('require ["fileinto", "include", "variables"];\nglobal "folder";\n'
                                'set "local" "only here";\nif header :contains "subject" "hello" '
                                '{ fileinto "${folder}"; return; }\nfileinto "never";\n'),
        "twice": compile_script('require ["imap4flags"];\naddflag "seen-once";\n'),
    }
    main = compile_script('require ["include", "variables", "fileinto"];\nglobal "folder";\nset "folder" "Lists";\n'
                          'include :personal "lists";\ninclude :once "twice";\ninclude :once "twice";\n'
                          'include :optional "absent";\nfileinto "after-${local}";\n')
    outcome = run(main, MAIL, "a@b.test", "c@d.test", library)
    assert [s.mailbox for s in outcome.stores] == ["Lists", "after-"]
    assert outcome.keep_flags == frozenset({"seen-once"}) and not outcome.error  # flags are one for all scripts
    missing = compile_script('require "include";\ninclude "absent";\n')
    assert "absent" in run(missing, MAIL, "a@b.test", "c@d.test", {}).error
    loop = {"self": compile_script('require "include";\ninclude "self";\n')}
    assert "deep" in run(loop["self"], MAIL, "a@b.test", "c@d.test", loop).error
    with pytest.raises(CompileError):
        compile_script('require "include";\ninclude :global "x";\n')


def test_duplicate_asks_the_memory_once_per_message_id():
    remembered: dict[str, int] = {}

    def seen(key: str, seconds: int, last: bool) -> bool:
        remembered[key] = remembered.get(key, 0) + 1
        return remembered[key] > 1
    script = compile_script('require ["duplicate", "fileinto"];\nif duplicate { fileinto "Dups"; }\n')
    message = MAIL.replace(b"\r\n\r\n", b"\r\nMessage-ID: <1@b.test>\r\n\r\n")
    assert run(script, message, "a@b.test", "c@d.test", None, seen).stores == []
    assert [s.mailbox for s in run(script, message, "a@b.test", "c@d.test", None, seen).stores] == ["Dups"]
    assert run(script, MAIL, "a@b.test", "c@d.test", None, seen).stores == []  # no Message-ID: never a duplicate
    tracked = compile_script('require ["duplicate"];\nif duplicate :uniqueid "x" :handle "h" :seconds 60 :last '
                             '{ discard; }\n')
    run(tracked, MAIL, "a@b.test", "c@d.test", None, seen)
    assert run(tracked, MAIL, "a@b.test", "c@d.test", None, seen).discarded


def test_spamtest_and_virustest_read_the_verdicts():
    from dizimail.services.sieve.interpret import run_message
    from dizimail.services.sieve.message import Message
    script = compile_script('require ["spamtest", "spamtestplus", "virustest", "fileinto", "relational", '
                            '"comparator-i;ascii-numeric"];\n'
                            'if spamtest :value "ge" :comparator "i;ascii-numeric" "7" { fileinto "Junk"; }\n'
                            'if spamtest :percent :value "eq" :comparator "i;ascii-numeric" "65" { addflag "x"; }\n'
                            'if virustest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "Unscanned"; }\n'
                            'if spamtest :is "0" { fileinto "Unjudged"; }\n'.replace('addflag "x"', 'keep'))
    judged = Message.parse(MAIL, "a@b.test", "c@d.test", spam_score=6.5, virus_scanned=True)
    assert [s.mailbox for s in run_message(script, judged).stores] == ["Junk", "INBOX"]
    plain = Message.parse(MAIL, "a@b.test", "c@d.test")
    assert [s.mailbox for s in run_message(script, plain).stores] == ["Unscanned", "Unjudged"]


def test_settings_generate_a_script_that_compiles_and_hostile_text_stays_text():
    from dizimail.model.errors import InvalidInput
    from dizimail.services.sieve.rules import checked, generate
    rules = checked({"vacation": {"text": 'away "\\" }; discard; {\n', "subject": "休假", "start": "2026-12-01",
                                  "end": "2026-12-31", "addresses": ["Me@Example.test"], "days": 3},
                     "forwarding": {"targets": ["a@far.test", "b@far.test"], "keep": False},
                     "filters": [{"field": "from", "op": "contains", "value": '"; discard; "', "action": "fileinto",
                                  "folder": "供应商/报价"},
                                 {"field": "to", "op": "is", "value": "list@x.test", "action": "seen"}]})
    script = compile_script(generate(rules, True))
    assert {"vacation", "redirect", "discard", "include", "fileinto"} <= script.uses
    outcome = run(script, MAIL, "a@b.test", "c@d.test", {})
    assert outcome.redirects == ["a@far.test", "b@far.test"] and outcome.discarded and not outcome.stores
    assert checked(json.loads(rules.to_json())) == rules
    for bad in ({"vacation": {"text": ""}}, {"vacation": {"text": "x", "days": 0}},
                {"vacation": {"text": "x", "start": "2026-13-01"}}, {"forwarding": {"targets": ["not an address"]}},
                {"forwarding": {"targets": [f"a{i}@x.test" for i in range(5)]}},
                {"filters": [{"field": "body", "op": "contains", "value": "x", "action": "discard"}]},
                {"filters": [{"field": "from", "op": "contains", "value": "x", "action": "fileinto"}]},
                {"filters": [{"field": "from", "op": "contains", "value": "a\nb", "action": "discard"}]},
                {"unknown": 1}, []):
        with pytest.raises(InvalidInput):
            checked(bad)


def test_a_fault_of_the_interpreter_keeps_the_message_and_says_so(caplog):
    from dizimail.services.sieve.tree import Command, Script, Test
    broken = Script((Command("if", branches=((Test("header", names=("subject",)), (Command("discard"),)),)),))
    outcome = run(broken, MAIL, "a@b.test", "c@d.test")  # a test without its match: no compiled script has one
    assert outcome.implicit_keep and not outcome.discarded and "internal error" in outcome.error
    assert "sieve.interpreter.failed" in caplog.text


def test_a_quick_run_past_its_budget_raises_too_slow_and_a_full_run_finishes():
    """The event loop's short run (services.sieve.deliver) hands a slow script to the scripts' thread, where
    the same script with the whole budget gives its real answer."""
    from dizimail.services.sieve.interpret import Message, TooSlow, run_message
    script = compile_script('require ["fileinto", "variables"];\n'
                            'if header :matches "subject" "*a*a*a*a*a*a*{1}*c" { fileinto "slow"; }\n'
                            'elsif true { fileinto "other"; }\n'.replace("{1}", "b"))
    message = Message.parse(b"Subject: " + b"a" * 12_000 + b"bc\r\n\r\nbody\r\n", "a@b.example", "c@d.example")
    with pytest.raises(TooSlow):
        run_message(script, message, cpu=0.0001, quick=True)
    outcome = run_message(script, message)
    assert [s.mailbox for s in outcome.stores] == ["slow"] and not outcome.error
    slow = run_message(script, message, cpu=0.0001)  # not quick: the budget's end is the script's failure
    assert slow.error and "processor time" in slow.error
