"""SORT and THREAD keys (RFC 5256 §2.1 base subject, §3 keys; RFC 5957 DISPLAYFROM/DISPLAYTO)."""

from __future__ import annotations

import datetime as dt

import pytest

from dizimail.codec.mime import sortkeys
from dizimail.codec.mime.sortkeys import MAX_REFERENCES, base_subject, first_address, references, sent_date
from dizimail.services.messages import sort_keys


@pytest.mark.parametrize(("subject", "base", "reply"), [
    ("Hello", "HELLO", False),
    ("Re: hello", "HELLO", True),  # step 3: subj-refwd
    ("RE: re: FW: Fwd: hello", "HELLO", True),
    ("Re:Re:hello", "HELLO", True),
    ("Re [x]: hello", "HELLO", True),  # a blob inside subj-refwd
    ("[PATCH] Re: hello", "HELLO", True),  # blobs before subj-refwd belong to the leader
    ("Re: [list] Fwd: hello (fwd)", "HELLO", True),  # step 2 trailer, 3 and 4 repeated
    ("hello (fwd) (FWD)  ", "HELLO", True),
    ("[list] hello", "HELLO", False),  # step 4: a leading blob goes when something follows
    ("[a] [b] hello", "HELLO", False),
    ("[a]", "[A]", False),  # ... never leaving the subject empty
    ("[a] [b]", "[B]", False),
    ("[fwd: Re: hello]", "HELLO", True),  # step 6, then steps 2 to 5 again
    ("[Fwd: [Fwd: hello]]", "HELLO", True),
    ("   Re:   hello\t\r\n  world  ", "HELLO WORLD", True),  # step 1: white space runs are one space
    ("Report: done", "REPORT: DONE", False),  # "re" must be followed by ":" (after blanks and a blob)
    ("Fwd hello", "FWD HELLO", False),
    ("[abc hello", "[ABC HELLO", False),  # an unclosed bracket is no blob
    ("回复: 电厂日报", "回复: 电厂日报", False),  # only re/fw/fwd are markers
    ("ärger", "äRGER", False),  # i;ascii-casemap: ASCII letters only
    ("", "", False),
    ("Re: ", "", True),
])
def test_base_subject_follows_rfc5256_section_2_1(subject, base, reply):
    assert base_subject(subject) == (base, reply)


class _CountingPattern:
    """Counts the blob matcher's calls and the characters it looked at."""

    def __init__(self, pattern):
        self.pattern, self.calls, self.chars = pattern, 0, 0

    def match(self, text, pos, end):
        self.calls += 1
        m = self.pattern.match(text, pos, end)
        nxt = min((i for i in (text.find("[", pos + 1, end), text.find("]", pos + 1, end)) if i >= 0), default=end)
        self.chars += (m.end() if m else nxt) - pos
        return m


@pytest.mark.parametrize("subject", ["[a]" * 15_000, "[a]" * 15_000 + "x", "Re: " + "[a]" * 15_000 + "Re: x",
                                     "re:[a]" * 7_500 + "x", "[fwd:" * 9_000 + "]" * 9_000, "[" * 45_000])
def test_base_subject_of_a_45kb_hostile_subject_is_one_pass(subject, monkeypatch):
    """Issue #9 §2: stripping one blob per loop and matching again was quadratic (SORT took 8.9 s).
    The work is counted, not timed: each character is looked at a bounded number of times."""
    counter = _CountingPattern(sortkeys._BLOB)
    monkeypatch.setattr(sortkeys, "_BLOB", counter)
    base, _reply = base_subject(subject)
    assert counter.calls <= len(subject) // 2 + 10
    assert counter.chars <= 3 * len(subject)
    if subject.startswith("[a][a]"):
        assert base == ("[A]" if subject.endswith("]") else "X")


def test_sent_date_is_utc_for_sort_and_the_written_day_for_sentbefore():
    stamp, day = sent_date("Mon, 2 Mar 2026 23:00:00 -0800")
    assert stamp == dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.UTC).timestamp()
    assert day == dt.date(2026, 3, 2).toordinal()  # the day as written, disregarding the zone
    assert sent_date("Mon, 2 Mar 2026 10:00:00 -0000")[0] == dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC).timestamp()
    assert sent_date("not a date") is None
    assert sent_date("Mon, 2 Mar 99999 10:00:00 +0000") is None


@pytest.mark.parametrize(("value", "display", "key"), [
    ("Bob Smith <bob@example.org>, carol@example.org", False, "BOB"),  # RFC 5256: the addr-mailbox
    ("Bob Smith <bob@example.org>", True, "BOB SMITH"),  # RFC 5957: the display name
    ("bob@example.org", True, "BOB@EXAMPLE.ORG"),  # ... or the address
    ('=?utf-8?b?5byg5LyfLCDmtYvor5U=?= <zhang@example.cn>, x@y', True, "张伟, 测试"),  # a comma inside a word
    ("undisclosed-recipients:;", False, "UNDISCLOSED-RECIPIENTS"),
    ("", True, ""),
])
def test_address_keys(value, display, key):
    assert first_address(value, display) == key


def test_references_fall_back_to_in_reply_to_and_keep_the_root_and_the_nearest():
    assert references("", "<a@x> <b@x>") == ("<a@x>",)
    assert references("<r@x> <p@x>", "<q@x>") == ("<r@x>", "<p@x>")
    many = " ".join(f"<{i}@x>" for i in range(5000))
    kept = references(many, "")
    assert len(kept) == MAX_REFERENCES and kept[0] == "<0@x>" and kept[-1] == "<4999@x>"


def test_sort_keys_of_a_message_use_its_first_fields():
    raw = (b"From: =?gb2312?B?1cXI/Q==?= <zhangsan@example.cn>\r\nTo: Ops <ops@example.cn>\r\n"
           b"Subject: =?gb2312?B?UmU6ILXns6fUy9DQyNWxqA==?=\r\nSubject: second\r\nDate: Tue, 3 Mar 2026 08:00:00 +0800\r\n"
           b"Message-ID: <1@example.cn> <2@example.cn>\r\nIn-Reply-To: <0@example.cn>\r\n\r\nbody\r\n")
    keys = sort_keys(raw)
    assert (keys.subject, keys.reply, keys.sort_from, keys.sort_to, keys.display_from, keys.display_to) == (
        "电厂运行日报", True, "ZHANGSAN", "OPS", "张三", "OPS")
    assert keys.message_id == "<1@example.cn>" and keys.references == ("<0@example.cn>",)
    assert keys.sent_day == dt.date(2026, 3, 3).toordinal()
