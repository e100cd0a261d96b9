"""Our Sieve interpreter against Dovecot Pigeonhole (issue #12): Debian's ``sieve-test SCRIPT MESSAGE``
prints the actions Pigeonhole would take; the same scripts and messages go through both, and the
actions must be the same, as it prints them: each mailbox stored into with its flags (a set), the
implicit keep with its flags, redirects, reject, discard. (Pigeonhole prints an explicit store into INBOX
beside an implicit keep, e.g. for ``fileinto :copy "INBOX";``, and so do we: delivery, when it runs
scripts, stores such a message into INBOX once.)

The generated scripts run 150 seeded examples in the suite; 4,500 unseeded ones agreed before this
was committed (``max_examples``, ``derandomize=False`` for a longer hunt). Differences we keep on purpose are listed in DELIBERATE with the RFC text
behind them (none so far)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dizimail.services.sieve import compile_script, run

SIEVE_TEST = shutil.which("sieve-test") or "/usr/bin/sieve-test"
SENDER = "boss@partner.test"
RECIPIENT = "sales@example.test"

MESSAGES = {
    "plain": (b"From: Alice Example <alice@partner.test>\r\nTo: sales@example.test, Bob <bob@example.test>\r\n"
              b"Cc: \"Team, all\" <team@example.test>\r\nSubject: Quarterly report\r\nX-Priority: 1\r\n"
              b"Message-ID: <1@partner.test>\r\n\r\nHello,\r\nthe report.\r\n"),
    "chinese-utf8": ("From: =?utf-8?b?5byg5bel?= <zhang@电网.cn>\r\nTo: sales@example.test\r\n"
                     "Subject: =?utf-8?b?5Y+R56Wo?= =?utf-8?b?5bey5byA?= 2026\r\n\r\n请查收发票。\r\n").encode(),
    "chinese-gb2312": (b"From: =?gb2312?q?=C0=EE=CB=C4?= <li@factory.test>\r\nTo: sales@example.test\r\n"
                       b"Subject: =?gb2312?b?vNO3qNSkvq8=?=\r\nX-Spam-Flag: YES\r\n\r\nbody\r\n"),
    "folded": (b"From: list-owner@lists.test\r\nTo: undisclosed-recipients:;\r\nSubject: [news] a long\r\n"
               b" folded subject line\r\nList-Id: <news.lists.test>\r\nPrecedence: bulk\r\n\r\nnews\r\n"),
    "large": (b"From: big@partner.test\r\nTo: sales@example.test\r\nSubject: attachment\r\n\r\n"
              + b"x" * 3000 + b"\r\n"),
    "headerless": b"\r\nno header at all\r\n",
    "dated": b"From: a@b.test\r\nTo: sales@example.test\r\nSubject: hi\r\nDate: Tue, 1 Dec 2026 10:15:30 +0800\r\n"
             b"Resent-Date: 2 Jan 2027 23:59:59 -0330\r\n\r\nbody\r\n",
    "subaddress-multipart": (
        b"From: Alice <alice+sales@partner.test>\r\nTo: sales+news@example.test, Bob <bob@example.test>\r\n"
        b"Cc: c1@x.test, c2@y.test\r\nSubject: [acme-users] [fwd] version 1.0 is out\r\nX-Count: 42\r\n"
        b"X-Count: 7\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
        b"preamble\r\n--b1\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"x+uy6crVsai45qGjUGxlYXNlIHJlcG9ydC4=\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + "<p>Please <b>report</b> &amp; 发票</p>\r\n--b1--\r\n".encode()),
}

SCRIPTS = {
    "empty": "",
    "keep": "keep;",
    "discard": "discard;",
    "stop-first": "stop; discard;",
    "fileinto": 'require "fileinto"; fileinto "Reports";',
    "fileinto-chinese": 'require "fileinto"; if header :contains "subject" "发票" { fileinto "财务/发票"; }',
    "fileinto-twice": 'require "fileinto"; fileinto "A"; fileinto "A"; fileinto "B";',
    "fileinto-copy": 'require ["fileinto", "copy"]; fileinto :copy "Archive";',
    "redirect": 'redirect "boss@example.test";',
    "redirect-copy": 'require "copy"; redirect :copy "boss@example.test";',
    "redirect-twice": 'redirect "a@example.test"; redirect "a@example.test";',
    "reject": 'require "reject"; if header :is "x-spam-flag" "YES" { reject "no spam, thanks"; }',
    "header-is-case": 'if header :is "Subject" "quarterly REPORT" { discard; }',
    "header-octet": 'require "comparator-i;octet"; '
                    'if header :comparator "i;octet" :is "subject" "quarterly report" { discard; }',
    "header-contains-list": 'if header :contains ["subject", "from"] ["nothing", "alice"] { discard; }',
    "header-matches": 'require "fileinto"; if header :matches "subject" "*report" { fileinto "R"; }'
                      ' elsif header :matches "subject" "[news]*" { fileinto "N"; }',
    "header-matches-q": 'if header :matches "subject" "Quarterly ?eport" { discard; }',
    "header-matches-escape": 'if header :matches "subject" "\\\\[news\\\\]*" { discard; }',
    "header-folded": 'if header :contains "subject" "long folded" { discard; }',
    "address-domain": 'require "fileinto"; if address :domain :is "from" "partner.test" { fileinto "P"; }',
    "address-localpart": 'if address :localpart :is ["to", "cc"] "team" { discard; }',
    "address-all-matches": 'require "fileinto"; if address :all :matches "from" "*@*.cn" { fileinto "CN"; }',
    "address-idn": 'require "fileinto"; if address :domain :is "from" "电网.cn" { fileinto "电网"; }',
    "envelope": 'require ["envelope", "fileinto"]; if envelope :domain :is "from" "partner.test" '
                '{ fileinto "FromPartner"; } if envelope :localpart :is "to" "sales" { fileinto "Sales"; }',
    "exists": 'require "fileinto"; if exists ["list-id", "precedence"] { fileinto "Lists"; }',
    "not-exists": 'if not exists "subject" { discard; }',
    "size-over": 'require "fileinto"; if size :over 2K { fileinto "Big"; } elsif size :under 100 { discard; }',
    "allof": 'require "fileinto"; if allof (header :contains "subject" "report", address :domain :is "from" '
             '"partner.test") { fileinto "Both"; }',
    "anyof-not": 'require "fileinto"; if anyof (not header :contains "subject" "report", false) '
                 '{ fileinto "Other"; } else { keep; }',
    "true-false": 'if false { discard; } elsif true { keep; }',
    "flags": 'require ["imap4flags", "fileinto"]; addflag "\\\\Seen"; if header :contains "x-priority" "1" '
             '{ addflag ["\\\\Flagged", "urgent"]; } fileinto "Flagged"; removeflag "\\\\Seen";',
    "flags-keep": 'require "imap4flags"; setflag "\\\\Answered $label1";',
    "flags-on-fileinto": 'require ["imap4flags", "fileinto"]; fileinto :flags "\\\\Deleted" "Trash";',
    "discard-then-keep": "discard; keep;",
    "spam-to-junk": 'require ["fileinto"]; if header :is "X-Spam-Flag" "YES" { fileinto "Junk"; stop; } keep;',
    "relational-count": 'require ["fileinto", "relational", "comparator-i;ascii-numeric"]; '
                        'if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "3" { fileinto "Many"; } '
                        'if header :count "eq" :comparator "i;ascii-numeric" "x-count" "2" { fileinto "Two"; }',
    "relational-value": 'require ["fileinto", "relational", "comparator-i;ascii-numeric"]; '
                        'if header :value "gt" :comparator "i;ascii-numeric" "x-count" "40" { fileinto "Big"; } '
                        'if header :value "lt" "subject" "M" { fileinto "Early"; } '
                        'if header :value "ne" :comparator "i;octet" "subject" "x" { fileinto "NotX"; }',
    "numeric-is": 'require ["fileinto", "comparator-i;ascii-numeric"]; '
                  'if header :is :comparator "i;ascii-numeric" "x-count" "042" { fileinto "FortyTwo"; } '
                  'if header :is :comparator "i;ascii-numeric" "subject" "abc" { fileinto "BothInfinite"; }',
    "subaddress": 'require ["fileinto", "subaddress", "envelope"]; '
                  'if address :detail "to" "news" { fileinto "News"; } '
                  'if address :user "from" "alice" { fileinto "Alice"; } '
                  'if address :detail :matches "from" "*" { fileinto "AnyDetail"; } '
                  'if envelope :user "to" "sales" { fileinto "Sales"; }',
    "index": 'require ["fileinto", "index"]; '
             'if header :index 2 :is "x-count" "7" { fileinto "Second"; } '
             'if header :index 1 :last :is "x-count" "7" { fileinto "Last"; } '
             'if address :index 1 :domain "cc" "x.test" { fileinto "FirstCc"; }',
    "encoded-character": 'require ["fileinto", "encoded-character"]; '
                         'fileinto "${unicode:8D22 52A1}${hex:41 42}-${hex:zz}";',
    "variables-matches": 'require ["fileinto", "variables"]; if header :matches "subject" "[*] *" '
                         '{ set :upper "list" "${1}"; fileinto "L-${list}"; fileinto "R-${2}"; } '
                         'if address :matches "from" "*@*" { fileinto "D-${2}"; }',
    "variables-modifiers": 'require ["fileinto", "variables"]; set :upper :lowerfirst "a" "hello"; '
                           'set :length "n" "发票abc"; set :quotewildcard "q" "a*b?c"; '
                           'if string :is "${q}" "a\\\\*b\\\\?c" { fileinto "Q"; } '
                           'fileinto "${a}-${n}-${unknown}-${ x}-${99}";',
    "variables-string": 'require ["fileinto", "variables"]; set "s" "Quarterly report"; '
                        'if string :contains "${s}" "report" { fileinto "Has"; } '
                        'if string :matches ["${s}", "x"] "*ly *" { fileinto "M-${2}-${1}"; }',
    "body": 'require ["fileinto", "body"]; if body :contains "report" { fileinto "Text"; } '
            'if body :raw :contains "x+uy6crV" { fileinto "Raw"; } '
            'if body :content "text/html" :contains "<b>" { fileinto "Html"; } '
            'if body :text :contains "发票" { fileinto "Cn"; }',
    "vacation": 'require ["vacation"]; if header :contains "subject" "report" { vacation :days 3 :subject "away" '
                'text:\nI am away.\n.\n; }',
    "vacation-default": 'require ["vacation", "fileinto"]; vacation "back monday"; fileinto "Seen";',
    "date": 'require ["date", "fileinto", "relational", "variables", "index"]; '
            'if date :is "date" "year" "2026" { fileinto "y2026"; } '
            'if date :originalzone :is "date" "hour" "10" { fileinto "h10-orig"; } '
            'if date :zone "+0000" :value "ge" "date" "hour" "02" { fileinto "h02-utc"; } '
            'if date :matches "date" "iso8601" "*" { fileinto "iso-${0}"; } '
            'if date :matches "date" "std11" "*" { fileinto "std-${0}"; } '
            'if date :matches "date" "julian" "*" { fileinto "jul-${0}"; } '
            'if date :matches "date" "weekday" "*" { fileinto "wd-${0}"; } '
            'if date :originalzone :matches "date" "zone" "*" { fileinto "oz-${0}"; } '
            'if date :matches "date" "time" "*" { fileinto "t-${0}"; } '
            'if date :matches "x-none" "year" "*" { fileinto "missing"; } '
            'if date :matches "subject" "year" "*" { fileinto "bad"; } '
            'if date :zone "+0530" :matches "resent-date" "iso8601" "*" { fileinto "ist-${0}"; } '
            'if date :originalzone :matches "resent-date" "std11" "*" { fileinto "nst-${0}"; } '
            'if currentdate :value "ge" "year" "2026" { fileinto "now"; }',
    "mailboxexists": 'require ["fileinto", "mailbox"]; if mailboxexists "INBOX" { fileinto "Yes"; } '
                     'if mailboxexists "Nope" { fileinto "No"; }',
    "flags-variable": 'require ["fileinto", "imap4flags", "variables"]; setflag "f" "\\\\Seen"; '
                      'addflag "f" "x"; fileinto :flags "${f}" "V"; if hasflag :contains "f" "x" { fileinto "HasX"; }',
}

DELIBERATE: dict[tuple[str, str], str] = {}  # (script, message) → why we differ, with the RFC text


def pigeonhole(workdir: Path, script: str, message: bytes) -> set[str]:
    (workdir / "s.sieve").write_text(script, encoding="utf-8")
    (workdir / "m.eml").write_bytes(message)
    for name in ("s.sieve", "m.eml"):
        os.chmod(workdir / name, 0o644)
    out = subprocess.run([SIEVE_TEST, "-c", str(workdir / "dovecot.conf"), "-f", SENDER, "-a", RECIPIENT, "-r",
                          RECIPIENT, str(workdir / "s.sieve"), str(workdir / "m.eml")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    actions: set[str] = set()
    entry: list[str] | None = None  # the store being read: [kind, mailbox, flags...]
    vacation: dict[str, str] | None = None
    section = ""
    for line in out.stdout.splitlines() + ["* end"]:
        text = line.strip()
        if text.startswith(("* ", "Implicit keep:")) and entry is not None:
            actions.add(f"{entry[0]}:{entry[1]}:{' '.join(sorted(set(entry[2:])))}")  # flags: a set
            entry = None
        if text in ("Performed actions:", "Implicit keep:"):
            section = "keep" if text.startswith("Implicit") else "store"
        elif text.startswith("* store message in folder: "):
            entry = [section, text.split(": ", 1)[1]]
        elif text.startswith("+ add IMAP flags: ") and entry is not None:
            entry += text.split(": ", 1)[1].split()
        elif text.startswith("* redirect message to: "):
            actions.add("redirect:" + text.split(": ", 1)[1].strip("<>"))
        elif text.startswith("* reject message with reason: "):
            actions.add("reject:" + text.split(": ", 1)[1])
        elif text == "* discard":
            actions.add("discard")
        elif text == "* send vacation message:":
            vacation = {"seconds": "", "subject": ""}
        elif text.startswith("=> ") and vacation is not None and ":" in text:
            key, _, value = text[3:].partition(":")
            if key.strip() in vacation:
                vacation[key.strip()] = value.strip()
    if vacation is not None:
        actions.add(f"vacation:{vacation['seconds']}:{vacation['subject']}")
    return actions


def ours(script: str, message: bytes) -> set[str]:
    outcome = run(compile_script(script), message, SENDER, RECIPIENT)
    actions = {f"store:{s.mailbox}:{' '.join(sorted(s.flags))}" for s in outcome.stores}
    actions |= {f"redirect:{r}" for r in outcome.redirects}
    if outcome.reject is not None:
        actions.add(f"reject:{outcome.reject}")
    if outcome.discarded:
        actions.add("discard")
    if outcome.implicit_keep:
        actions.add("keep:INBOX:" + " ".join(sorted(outcome.keep_flags)))
    if outcome.vacation is not None:
        actions.add(f"vacation:{outcome.vacation.period}:{outcome.vacation.subject}")
    return actions


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    if not os.path.exists(SIEVE_TEST):
        pytest.fail("sieve-test (Debian's dovecot-sieve) is missing: scripts/test-deps.sh installs it")
    path = Path(tempfile.mkdtemp(prefix="sieve-diff-"))
    path.chmod(0o1777)  # sieve-test, as root, drops to the mail user: it must read (and may write) here
    user = "mail_uid = nobody\nmail_gid = nogroup\n" if os.geteuid() == 0 else ""
    (path / "dovecot.conf").write_text(f"{user}mail_location = maildir:{path}/maildir\n")
    (path / "dovecot.conf").chmod(0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_the_same_actions_as_pigeonhole(workdir, script):
    for name, message in MESSAGES.items():
        expected = pigeonhole(workdir, SCRIPTS[script], message)
        got = ours(SCRIPTS[script], message)
        if (script, name) in DELIBERATE:
            assert got != expected, f"{script} × {name}: the deliberate difference is gone"
            continue
        assert got == expected, f"{script} × {name}: Pigeonhole {sorted(expected)}, ours {sorted(got)}"


# --- scripts generated over the grammar we run -------------------------------------------------------
def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list(items: list[str]) -> str:
    return _quoted(items[0]) if len(items) == 1 else "[" + ", ".join(_quoted(i) for i in items) + "]"


KEYS = ["report", "Quarterly*", "*@*.cn", "partner.test", "sales", "*", "?", "发票", "YES", "alice", "",
        "[news]*", "x\\*y", "REPORT", "example.test", "*e*e*", "news", "42", "7", "2", "040", "M"]
HEADERS = ["subject", "from", "to", "cc", "x-spam-flag", "list-id", "x-none", "x-count"]
ADDRESS_HEADERS = ["from", "to", "cc"]
MAILBOXES = ["A", "财务", "INBOX", "Junk", "V-${v}", "M-${1}-${2}"]
FLAGS = ["\\Seen", "\\Flagged", "$label1", "urgent"]
RELATIONS = ["gt", "ge", "lt", "le", "eq", "ne"]


def _how(draw) -> str:
    match = draw(st.sampled_from([":is", ":contains", ":matches", ":value", ":count"]))
    if match in (":value", ":count"):
        match += f' "{draw(st.sampled_from(RELATIONS))}"'
    choices = ["", "i;octet"] + (["i;ascii-numeric"] if match.split()[0] not in (":contains", ":matches") else [])
    comparator = draw(st.sampled_from(choices))
    return match + (f' :comparator "{comparator}"' if comparator else "")


def _index(draw) -> str:
    if not draw(st.booleans()):
        return ""
    return f" :index {draw(st.integers(1, 3))}" + (" :last" if draw(st.booleans()) else "")


@st.composite
def conditions(draw, depth: int = 0):
    kinds = ["header", "address", "envelope", "exists", "size", "true", "false", "body", "string", "date"]
    if depth < 2:
        kinds += ["not", "allof", "anyof"]
    kind = draw(st.sampled_from(kinds))
    keys = _list(draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=2)))
    parts = [":all", ":localpart", ":domain", ":user", ":detail"]
    if kind == "header":
        names = _list(draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=2)))
        return f"header {_how(draw)}{_index(draw)} {names} {keys}"
    if kind == "address":
        part = draw(st.sampled_from(parts))
        names = _list(draw(st.lists(st.sampled_from(ADDRESS_HEADERS), min_size=1, max_size=2)))
        return f"address {part}{_index(draw)} {_how(draw)} {names} {keys}"
    if kind == "envelope":
        part = draw(st.sampled_from(parts))
        return f"envelope {part} {_how(draw)} {_list([draw(st.sampled_from(['from', 'to']))])} {keys}"
    if kind == "body":
        transform = draw(st.sampled_from(["", " :raw", " :text", ' :content "text"', ' :content "text/html"']))
        return f"body{transform} {_how(draw)} {keys}"
    if kind == "date":
        zone = draw(st.sampled_from(["", " :originalzone", ' :zone "+0800"', ' :zone "-0330"']))
        part = draw(st.sampled_from(["year", "month", "day", "date", "hour", "weekday", "zone", "time", "julian"]))
        keys = _list(draw(st.lists(st.sampled_from(["2026", "12", "01", "2026-12-01", "02", "2", "+0800", "*",
                                                    "0?:*", "61375"]), min_size=1, max_size=2)))
        return f"date{zone} {_how(draw)} {_quoted(draw(st.sampled_from(['date', 'resent-date', 'subject'])))} " \
               f"{_quoted(part)} {keys}"
    if kind == "string":
        source = _list(draw(st.lists(st.sampled_from(["${v}", "${1}", "${0}", "x${2}y", "report"]), min_size=1,
                                     max_size=2)))
        return f"string {_how(draw)} {source} {keys}"
    if kind == "exists":
        return f"exists {_list(draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=2)))}"
    if kind == "size":
        return f"size {draw(st.sampled_from([':over', ':under']))} {draw(st.sampled_from(['100', '1K', '2K', '0']))}"
    if kind in ("true", "false"):
        return kind
    if kind == "not":
        return "not " + draw(conditions(depth + 1))
    return f"{kind} (" + ", ".join(draw(st.lists(conditions(depth + 1), min_size=1, max_size=3))) + ")"


@st.composite
def actions(draw) -> str:
    kind = draw(st.sampled_from(["keep", "discard", "fileinto", "redirect", "flag", "stop", "set"]))
    if kind == "fileinto":
        copy = " :copy" if draw(st.booleans()) else ""
        flags = f" :flags {_list(draw(st.lists(st.sampled_from(FLAGS), min_size=1, max_size=2)))}" \
            if draw(st.booleans()) else ""
        return f"fileinto{copy}{flags} {_quoted(draw(st.sampled_from(MAILBOXES)))};"
    if kind == "redirect":
        copy = " :copy" if draw(st.booleans()) else ""
        return f"redirect{copy} {_quoted(draw(st.sampled_from(['a@example.test', 'b@far.test'])))};"
    if kind == "flag":
        verb = draw(st.sampled_from(["setflag", "addflag", "removeflag"]))
        return f"{verb} {_list(draw(st.lists(st.sampled_from(FLAGS), min_size=1, max_size=2)))};"
    if kind == "set":
        modifier = draw(st.sampled_from(["", " :lower", " :upper", " :upperfirst", " :quotewildcard", " :length",
                                         " :upper :lowerfirst"]))
        return f"set{modifier} \"v\" {_quoted(draw(st.sampled_from(KEYS + ['${1}', '${v}${2}'])))};"
    return f"{kind};"


@st.composite
def scripts(draw) -> str:
    lines = ['require ["fileinto", "envelope", "copy", "imap4flags", "comparator-i;octet", "relational", '
             '"comparator-i;ascii-numeric", "subaddress", "index", "variables", "body", "date"];']
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            body = " ".join(draw(st.lists(actions(), min_size=1, max_size=3)))
            other = " ".join(draw(st.lists(actions(), min_size=1, max_size=2)))
            tail = f" else {{ {other} }}" if draw(st.booleans()) else ""
            lines.append(f"if {draw(conditions())} {{ {body} }}{tail}")
        else:
            lines.append(draw(actions()))
    return "\n".join(lines) + "\n"


HUNT = int(os.environ.get("SIEVE_DIFF_HUNT", "0"))  # a longer unseeded hunt by hand: SIEVE_DIFF_HUNT=3000


@settings(max_examples=HUNT or 150, derandomize=not HUNT, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts())
def test_generated_scripts_take_the_same_actions_as_pigeonhole(workdir, script):
    for name, message in MESSAGES.items():
        expected = pigeonhole(workdir, script, message)
        got = ours(script, message)
        assert got == expected, f"{name}:\n{script}\nPigeonhole {sorted(expected)}, ours {sorted(got)}"
