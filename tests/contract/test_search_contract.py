"""What SEARCH, SORT and THREAD ask of the stores (interfaces/meta.py, interfaces/search.py), and
the search service over them (services/search.py): stored fields as UID sets and orders, sort keys
computed at ingest or on first use, messages the index lacks indexed on demand."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest

from dizimail.app.build import open_database
from dizimail.codec.imap import searchkeys as sk
from dizimail.codec.imap.seqset import SequenceSet
from dizimail.config.schema import Config, ServerConfig
from dizimail.model.types import IngestRecord, LocalDelivery, MessageFilter
from dizimail.services.messages import describe_blob
from dizimail.services.search import MAX_LEAVES, MessageSearch, SearchTooComplex
from dizimail.services.selected import SelectedMailbox
from dizimail.storage.sqlite.meta import SqliteMetaStore
from dizimail.storage.sqlite.search import SqliteSearchIndex

HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()
MESSAGES = [  # (raw, flags, internal date)
    (b"From: Zed <zed@x.example>\r\nSubject: Beta\r\nDate: Mon, 2 Mar 2026 23:00:00 -0800\r\n"
     b"Message-ID: <1@x>\r\n\r\nbbbb\r\n", ("\\Seen",), DAY + 10),
    (b"From: amy@x.example\r\nSubject: Re: alpha\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nMessage-ID: <2@x>\r\n"
     b"References: <3@x>\r\nX-Tag: Urgent stuff\r\n\r\na\r\n", ("$Work",), DAY + 86400),
    (b"From: Bob <bob@x.example>\r\nSubject: alpha\r\nMessage-ID: <3@x>\r\n\r\n" + b"a" * 3000 + b"\r\n", (),
     DAY - 86400),
]


@pytest.fixture
async def box(tmp_path) -> AsyncIterator[tuple]:
    """An INBOX with MESSAGES (UIDs 1..3, the first with keys from ingest, the others without, as
    blobs stored before keys existed), the stores, and a view of it."""
    db, blobs = open_database(Config(server=ServerConfig(data_dir=tmp_path)))
    db.start()
    try:
        meta, index = SqliteMetaStore(db, blobs), SqliteSearchIndex(db)
        await meta.add_domain("example.test")
        await meta.add_accounts([("a@example.test", HASH, "", 0)])
        a = await meta.get_account("a@example.test")
        for n, (raw, flags, when) in enumerate(MESSAGES):
            writer = blobs.writer()
            writer.write(raw)
            described = describe_blob(raw) if n == 0 else None
            await meta.commit_ingest(IngestRecord(f"Q{n}", writer.finish(), "", time.time(), (
                LocalDelivery(a.id, a.address, "INBOX", b"Delivered-To: a+%d@example.test\r\n" % n, flags, when),),
                meta=described))
        info = await meta.get_mailbox(a.id, "INBOX")
        view = SelectedMailbox(meta, info, readonly=True)
        await view.open()
        yield meta, index, MessageSearch(meta, index, blobs), view
    finally:
        db.close()


async def test_filter_uids_answers_flags_sizes_dates_and_modseq(box):
    meta, _index, _search, view = box
    mailbox = view.info.id
    assert await meta.filter_uids(mailbox, MessageFilter(flag="\\Seen")) == {1}
    assert await meta.filter_uids(mailbox, MessageFilter(flag="\\Seen", flag_set=False)) == {2, 3}
    assert await meta.filter_uids(mailbox, MessageFilter(flag="$work")) == {2}  # keywords ignore case
    assert await meta.filter_uids(mailbox, MessageFilter(flag="\\Deleted", flag_set=False)) == {1, 2, 3}
    assert await meta.filter_uids(mailbox, MessageFilter(larger=1000)) == {3}
    assert await meta.filter_uids(mailbox, MessageFilter(internal_from=DAY, internal_until=DAY + 86400)) == {1}
    assert await meta.filter_uids(mailbox, MessageFilter(modseq_from=1)) == {1, 2, 3}


async def test_sort_keys_come_from_ingest_or_are_computed_once_on_first_use(box):
    meta, _index, search, view = box
    mailbox = view.info.id
    assert len(await meta.blobs_without_keys(mailbox)) == 2
    by_date = await search.sort(view, [(False, "DATE")], [1, 2, 3])
    assert await meta.blobs_without_keys(mailbox) == []  # computed and stored
    assert by_date == [3, 1, 2]  # no Date field: the internal date (RFC 5256 §3)
    assert await search.sort(view, [(True, "DATE")], [1, 2, 3]) == [2, 1, 3]
    assert await search.sort(view, [(False, "SUBJECT"), (True, "ARRIVAL")], [1, 2, 3]) == [2, 3, 1]
    assert await search.sort(view, [(False, "FROM")], [1, 2, 3]) == [2, 3, 1]
    assert await search.sort(view, [(False, "DISPLAYFROM")], [3, 1]) == [3, 1]  # BOB, ZED
    assert await search.sort(view, [(False, "SIZE")], [2, 3]) == [2, 3]
    keys = {k.uid: k.keys for k in await meta.message_keys(mailbox)}
    assert keys[2].reply and keys[2].subject == "ALPHA" and keys[2].references == ("<3@x>",)


async def test_search_combines_stored_fields_text_and_the_view(box):
    _meta, _index, search, view = box

    async def uids(key, saved=()):
        return await search.search(view, key, saved)
    assert await uids(sk.All()) == [1, 2, 3]
    assert await uids(sk.Not(sk.Flag("\\Seen", True))) == [2, 3]
    assert await uids(sk.Or(sk.Size("larger", 1000), sk.Flag("$Work", True))) == [2, 3]
    assert await uids(sk.And((sk.Header("SUBJECT", "ALPHA"), sk.Not(sk.Header("SUBJECT", "re:"))))) == [3]
    assert await uids(sk.Body("bbb")) == [1]  # unindexed messages are indexed first, then found
    assert await uids(sk.Text("urgent")) == [2]
    assert await uids(sk.Header("X-TAG", "STUFF")) == [2]  # any field, from the document
    assert await uids(sk.Header("DELIVERED-TO", "a+2@")) == [3]  # the per-message trace fields count
    assert await uids(sk.Header("X-TAG", "")) == [2]  # an empty value: having the field
    assert await uids(sk.DateKey("sent", "on", dt.date(2026, 3, 2))) == [1]  # the day as written
    assert await uids(sk.DateKey("internal", "before", dt.date(2026, 3, 2))) == [3]
    assert await uids(sk.Seq(SequenceSet.parse("2:*"))) == [2, 3]
    assert await uids(sk.Uid(SequenceSet.parse("$"))) == []  # RFC 5182: nothing saved yet
    assert await uids(sk.Uid(SequenceSet.parse("$")), saved=[3]) == [3]
    assert await uids(sk.And((sk.All(),) * 5000)) == [1, 2, 3]  # one leaf, however often repeated


async def test_a_search_with_too_many_distinct_keys_is_refused(box):
    _meta, _index, search, view = box
    key = sk.And(tuple(sk.Size("larger", n) for n in range(MAX_LEAVES + 1)))
    with pytest.raises(SearchTooComplex):
        await search.search(view, key)


async def test_the_trigram_index_answers_large_mailboxes_and_gives_way_to_a_scan_for_common_words(box, monkeypatch):
    from dizimail.storage.sqlite import search as sqlite_search

    _meta, index, search, view = box
    await search.index_mailbox(view.info.id)
    assert await index.unindexed(view.info.id) == []
    monkeypatch.setattr(sqlite_search, "SCAN_BELOW", 0)  # the index for any mailbox
    assert await index.search(view.info.id, "subject", "alpha") == {2, 3}
    assert await index.search(view.info.id, "text", "x.example") == {1, 2, 3}
    monkeypatch.setattr(sqlite_search, "HITS_PER_MESSAGE", -1000)  # every term "too common": the scan
    assert await index.search(view.info.id, "subject", "alpha") == {2, 3}
