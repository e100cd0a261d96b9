"""The content filter's parts without a network: tokens (hostile and Chinese input), the combining rule
and its scale, subject tagging."""

import random

from dizimail.services.content.bayes import Model, chi2q
from dizimail.services.content.tokens import MAX_TOKENS, tokenize
from dizimail.services.policy.report import tag_subject


def test_tokens_of_a_chinese_html_message():
    raw = ("Subject: =?gb2312?b?" + __import__("base64").b64encode("代开发票优惠".encode("gb2312")).decode() + "?=\r\n"
           "From: =?utf-8?q?=E5=BC=A0=E4=B8=89?= <zhang@Example.CN>\r\n"
           "Received: from evil.test\r\nList-Id: <list.example.org>\r\n"
           "Content-Type: text/html; charset=gbk\r\n\r\n").encode() + (
        '<p style="display:none">hidden</p><a href="http://phish.test/x">http://bank.example.com</a>'
        '<img src="x.gif">联系电话 FREE money $100</p>').encode("gbk")
    tokens = tokenize(raw)
    assert {"代开", "开发", "票优", "from-domain:example.cn", "html:hidden",
            "html:linkmismatch", "html:imageonly", "href:phish.test", "联系", "系电", "free", "CAPS:free",
            "money"} <= tokens
    assert not any("evil" in t or "list.example" in t for t in tokens)  # trace and list headers are not read


def test_mbox_from_line_is_skipped_and_hostile_input_is_bounded():
    assert "hello" in tokenize(b"From someone  Sat Jan  1 00:00:00 2000\nSubject: hello\n\nbody\n")
    assert "someone" not in tokenize(b"From someone  Sat Jan  1 00:00:00 2000\nSubject: hello\n\nbody\n")
    rng = random.Random(1)
    words = " ".join("".join(rng.choice("abcdefghij") for _ in range(8)) for _ in range(50_000))
    assert len(tokenize(b"Subject: x\r\n\r\n" + words.encode())) <= MAX_TOKENS + 50
    assert tokenize(b"") == {"part:text/plain", "charset:us-ascii"}
    assert isinstance(tokenize(b"\xff\xfe<<<<" * 10_000), set)


def test_subject_words_share_the_text_vocabulary_and_url_paths_are_not_words():
    """A subject word is the same token as that word in a body (short mail such as a feed item is judged
    by what the filter learnt from bodies too), and a link's path is not read as words: a news feed's
    ``/click/`` links are not spam's "click"; the link's host still is a token."""
    tokens = tokenize(b"Subject: FREE OFFER!\r\n\r\nRead http://www.news.example/click/offer-free?x=1 now\r\n")
    assert {"free", "offer", "read", "now", "subject:ALLCAPS", "subject:bang", "url:www.news.example",
            "url:news.example"} <= tokens
    assert not {"click", "subject:free", "subject:offer", "x"} & tokens
    assert not any(t.startswith("headers:") for t in tokens)  # how many fields relays added is not a clue
    glued = tokenize(b"Subject: x\r\n\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAa05aahyyd5mdxxzzt8nfn hello\r\n")
    assert {"skip:a50", "hello"} <= glued  # a base64 line counts by first letter and length, not as words
    assert not any(len(t) > 12 for t in glued if not t.startswith(("skip:", "charset:", "part:")))


def test_scores_are_5_without_evidence_and_move_on_a_log_odds_scale():
    model = Model()
    assert model.score({"a"})[0] == 5.0
    for _ in range(50):
        model.learn({"viagra", "casino", "common"}, spam=True)
        model.learn({"meeting", "turbine", "common"}, spam=False)
    spam, _ = model.score({"viagra", "casino", "common"})
    ham, _ = model.score({"meeting", "turbine", "common"})
    even, _ = model.score({"viagra", "meeting"})
    assert spam > 7 and ham < 3 and 4 < even < 6
    model.learn({"viagra", "casino", "common"}, spam=True, sign=-1)  # unlearning
    assert model.nspam == 49 and model.counts["viagra"] == [49, 0]
    assert abs(chi2q(0.0, 4) - 1.0) < 1e-12 and chi2q(1000.0, 4) < 1e-100


def test_subject_tag():
    assert tag_subject(b"From: a\r\nSubject: hello\r\n\r\nbody", "[SPAM] ") == \
        b"From: a\r\nSubject: [SPAM] hello\r\n\r\nbody"
    assert tag_subject(b"Subject: [SPAM] hello\r\n\r\n", "[SPAM] ") == b"Subject: [SPAM] hello\r\n\r\n"
    assert tag_subject(b"From: a\r\n\r\nbody", "[SPAM] ") == b"From: a\r\nSubject: [SPAM]\r\n\r\nbody"


def test_html_tells_are_looked_for_in_a_bounded_prefix():
    """Each tell pattern runs over at most MAX_MARKUP characters (a pattern holds the GIL for its whole
    search): a hostile part of megabytes of unclosed anchors costs no more than its first 64 KiB."""
    from dizimail.services.content.tokens import MAX_MARKUP

    filler = "<a " + "href=x " * 60
    early = b"Content-Type: text/html\r\n\r\n" + b'<p style="display:none">x</p>' + filler.encode() * 2000
    late = b"Content-Type: text/html\r\n\r\n" + filler.encode() * (MAX_MARKUP // len(filler) + 10) + \
        b'<p style="display:none">x</p>'
    assert "html:hidden" in tokenize(early)
    assert "html:hidden" not in tokenize(late) and "html" in tokenize(late)


def test_html_tells_are_looked_for_in_a_bounded_total_of_markup():
    """Hundreds of HTML parts cost no more than MAX_MARKUP_TOTAL characters of tell-searching in all:
    the parts past it still give their text but no tells."""
    from dizimail.services.content.tokens import MAX_MARKUP, MAX_MARKUP_TOTAL

    filler = "<p class='" + "y" * 1000 + "'>x</p>"  # markup, hardly any text
    part = b"--b\r\nContent-Type: text/html\r\n\r\n" + (filler * (MAX_MARKUP // len(filler) + 1)).encode() + b"\r\n"
    parts = MAX_MARKUP_TOTAL // MAX_MARKUP
    hidden = b'--b\r\nContent-Type: text/html\r\n\r\n<p style="display:none">late</p>\r\n'
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + part * parts + hidden + b"--b--\r\n"
    tokens = tokenize(raw)
    assert "late" in tokens and "html:hidden" not in tokens
    assert "html:hidden" in tokenize(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + part + hidden + b"--b--\r\n")
