"""THREAD=REFERENCES and THREAD=ORDEREDSUBJECT over sort keys (RFC 5256 §2.2, §3), and the
thread-list rendering (§4), on hostile shapes too: nothing recurses or loops."""

from __future__ import annotations

from dizimail.imap.searching import thread_list
from dizimail.model.types import MessageKeys, SortKeys
from dizimail.services.threads import ordered_subject, references


def msg(uid: int, subject: str, date: float, msgid: str = "", refs: tuple[str, ...] = (),
        reply: bool = False) -> MessageKeys:
    return MessageKeys(uid, 0.0, 100, SortKeys(subject, reply, date, None, "", "", "", "", "", msgid, refs))


def render(roots) -> str:
    return thread_list(roots, lambda uid: uid)


def test_references_links_replies_under_their_parents_in_date_order():
    items = [msg(1, "BETA", 2, "<1@x>"), msg(2, "ALPHA", 3, "<2@x>", ("<3@x>",), reply=True),
             msg(3, "ALPHA", 1, "<3@x>"), msg(4, "ALPHA", 4, "<4@x>", ("<3@x>",), reply=True)]
    assert render(references(items)) == "(3 (2)(4))(1)"


def test_a_missing_parent_becomes_a_dummy_only_when_it_holds_several_children():
    lone = [msg(1, "A", 1, "<1@x>", ("<gone@x>",))]
    assert render(references(lone)) == "(1)"  # a root dummy with one child is dropped
    pair = [msg(1, "A", 1, "<1@x>", ("<gone@x>",)), msg(2, "B", 2, "<2@x>", ("<gone@x>",))]
    assert render(references(pair)) == "((1)(2))"


def test_roots_with_the_same_base_subject_are_gathered():
    items = [msg(1, "NEWS", 1, "<1@x>"), msg(2, "NEWS", 2, "<2@x>", reply=True), msg(3, "NEWS", 3, "<3@x>")]
    assert render(references(items)) == "((1 2)(3))"  # a later original: a dummy over both, the reply stays
    assert render(references(items[:2])) == "(1 2)"  # a reply goes under the original
    assert render(references([items[0], items[2]])) == "((1)(3))"  # two originals: a dummy holds both


def test_reference_loops_and_duplicate_ids_do_not_loop_or_lose_messages():
    items = [msg(1, "A", 1, "<a@x>", ("<b@x>",)), msg(2, "B", 2, "<b@x>", ("<a@x>",)),
             msg(3, "C", 3, "<a@x>"), msg(4, "D", 4)]
    out = render(references(items))
    assert sorted(int(n) for n in out.replace("(", " ").replace(")", " ").split()) == [1, 2, 3, 4]


def test_a_chain_of_5000_replies_is_one_thread_without_recursion():
    items = [msg(n, f"S{n}", n, f"<{n}@x>", (f"<{n - 1}@x>",) if n > 1 else ()) for n in range(1, 5001)]
    assert render(references(items)) == "(" + " ".join(str(n) for n in range(1, 5001)) + ")"


def test_a_chain_of_5000_missing_ancestors_is_pruned_without_recursion():
    refs = tuple(f"<gone{i}@x>" for i in range(5000))
    items = [msg(1, "A", 1, "<1@x>", refs), msg(2, "B", 2, "<2@x>", refs[:2500])]
    assert render(references(items)) == "((1)(2))"  # siblings under the (dropped) chain of missing ones


def test_ordered_subject_groups_by_base_subject_under_the_earliest():
    items = [msg(1, "B", 5), msg(2, "A", 2), msg(3, "A", 1), msg(4, "A", 3), msg(5, "C", 4)]
    assert render(ordered_subject(items)) == "(3 (2)(4))(5)(1)"


def test_the_loop_check_walks_up_at_most_max_ancestors():
    """A chain deeper than MAX_ANCESTORS counts as a loop (not linked; not linking never loops): a
    hundred References a message make a chain 99 deep per message, and walking it whole for every link
    was quadratic (2,020 messages: 3.2 s, inline on the event loop below 2,000 rows)."""
    from dizimail.services.threads import MAX_ANCESTORS, _Box

    chain = [_Box()]
    for _ in range(2 * MAX_ANCESTORS):
        chain.append(_Box())
        chain[-2].link(chain[-1])
    stranger = _Box()
    assert chain[-10].above(chain[-1]) and not stranger.above(chain[10])
    assert stranger.above(chain[-1])  # too deep to tell: treated as a loop


def test_a_long_chain_of_dummies_is_pruned_once():
    """1,000 messages of 100 References each make a chain of 99,000 dummies, and 10,000 replies hang
    under its end. Splicing each dummy's children into its parent copied the list at every level
    (depth x replies: 10^9 pointer copies, 3 s here, growing with both); each dummy is walked once now.
    A check of the tree on that shape: every message ends up in the one thread under the dummy root."""
    chain = [msg(j + 1, "s", j, "", tuple(f"<d{99 * j + i}@x>" for i in range(100))) for j in range(1000)]
    replies = [msg(1001 + j, "s", 1000 + j, f"<y{j}@x>", ("<d99000@x>",)) for j in range(10_000)]
    roots = references(chain + replies)
    assert len(roots) == 1 and roots[0].uid is None
    assert sorted(c.uid for c in roots[0].children) == list(range(1, 11_001))
