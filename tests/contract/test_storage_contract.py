"""The storage contract (interfaces/): one suite, run on every backend (embedded today).

These tests talk to the stores through the interface methods only, so a PostgreSQL
implementation joins by adding a fixture parameter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from dizimail.app.build import open_database
from dizimail.config.schema import Config, ServerConfig
from dizimail.model.errors import Conflict, NotFound, TemporaryFailure
from dizimail.model.types import IngestRecord, LocalDelivery, QueuedRecipient
from dizimail.storage.sqlite.meta import SqliteMetaStore
from dizimail.storage.sqlite.queue import SqliteQueueStore

HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


@pytest.fixture(params=["sqlite"])
async def stores(request, tmp_path) -> AsyncIterator[tuple]:
    config = Config(server=ServerConfig(data_dir=tmp_path))
    db, blobs = open_database(config)
    db.start()
    try:
        yield SqliteMetaStore(db, blobs), SqliteQueueStore(db), blobs
    finally:
        db.close()


def put_blob(blobs, data: bytes):
    writer = blobs.writer()
    writer.write(data)
    return writer.finish()


async def test_domains_accounts_aliases(stores):
    meta, _queue, _blobs = stores
    await meta.add_domain("example.test")
    await meta.add_domain("alias.test", alias_of="example.test")
    with pytest.raises(Conflict):
        await meta.add_domain("example.test")
    assert [d.name for d in await meta.list_domains()] == ["alias.test", "example.test"]
    assert await meta.add_accounts([("a@example.test", HASH, "A", 0), ("a@example.test", HASH, "A", 0),
                                    ("b@nowhere.test", HASH, "B", 0)]) == [None, "user_exists", "unknown_domain"]
    account = await meta.get_account("A@Example.Test")
    assert account is not None and account.address == "a@example.test" and account.active
    await meta.add_alias("team@example.test", ["a@example.test", "x@remote.test"])
    alias = await meta.get_alias("team@example.test")
    assert alias is not None and alias.targets == ("a@example.test", "x@remote.test")
    info = await meta.lookup("team@example.test")
    assert info.account is None and info.alias == alias
    info = await meta.lookup("a@alias.test")
    assert info.domain is not None and info.domain.alias_of == "example.test" and info.account is None
    with pytest.raises(Conflict):
        await meta.remove_domain("example.test")
    await meta.update_account("a@example.test", status="suspended", quota_bytes=10)
    account = await meta.get_account("a@example.test")
    assert account is not None and not account.active and account.quota_bytes == 10
    with pytest.raises(NotFound):
        await meta.update_account("ghost@example.test", status="active")


async def test_accounts_page_by_local_part_and_search_takes_wildcards_as_text(stores):
    meta, _queue, _blobs = stores
    await meta.add_domain("example.test")
    await meta.add_domain("other.test")
    await meta.add_accounts([(f"u{i}@example.test", HASH, "王工" if i == 3 else f"n{i}", 0) for i in range(7)]
                            + [("odd@example.test", HASH, "50%_x", 0), ("u9@other.test", HASH, "n", 0)])
    first = await meta.page_accounts("example.test", limit=3)
    assert [a.address for a in first] == ["odd@example.test", "u0@example.test", "u1@example.test"]
    rest = await meta.page_accounts("example.test", after="u1", limit=100)
    assert [a.address.partition("@")[0] for a in rest] == ["u2", "u3", "u4", "u5", "u6"]  # other.test apart
    assert [a.address for a in await meta.page_accounts("example.test", search="王")] == ["u3@example.test"]
    assert [a.address for a in await meta.page_accounts("example.test", search="%_")] == ["odd@example.test"]
    assert await meta.page_accounts("example.test", search="_") == [await meta.get_account("odd@example.test")]
    assert len(await meta.page_accounts("example.test", search="U")) == 7  # ASCII without regard to case


async def test_ingest_commit_uids_modseq_and_expunge(stores):
    meta, queue, blobs = stores
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0), ("b@example.test", HASH, "", 0)])
    a, b = await meta.get_account("a@example.test"), await meta.get_account("b@example.test")
    blob = put_blob(blobs, b"Subject: x\r\n\r\nbody\r\n")
    for n in range(2):
        record = IngestRecord(queue_id=f"Q{n}", blob=blob, sender="s@remote.test", received_at=time.time(),
                              deliveries=(LocalDelivery(a.id, a.address, "INBOX", b"P:1\r\n"),
                                          LocalDelivery(b.id, b.address, "INBOX", b"P:22\r\n")),
                              queued=(QueuedRecipient("x@remote.test"),) if n == 0 else ())
        result = await meta.commit_ingest(record)
        assert result.delivered == (a.id, b.id)
    box = await meta.get_mailbox(a.id, "INBOX")
    entries = await meta.list_messages(box.id)
    assert [e.uid for e in entries] == [1, 2] and entries[0].modseq < entries[1].modseq
    assert entries[0].size == len(b"P:1\r\n") + blob.size
    assert [e.queue_id for e in await queue.list_queue()] == ["Q0"]
    assert (await meta.get_account("a@example.test")).used_bytes == 2 * entries[0].size
    assert await meta.expunge(box.id, [1]) == 1
    assert [e.uid for e in await meta.list_messages(box.id)] == [2]
    box2 = await meta.get_mailbox(a.id, "INBOX")
    assert box2.uidnext == 3 and box2.highestmodseq > box.highestmodseq
    # the blob is still referenced by b's messages and the queue
    assert blobs.exists(blob.id)


async def test_blob_is_released_when_last_reference_goes(stores):
    meta, _queue, blobs = stores
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    a = await meta.get_account("a@example.test")
    blob = put_blob(blobs, b"Subject: once\r\n\r\nonly\r\n")
    await meta.commit_ingest(IngestRecord("Q", blob, "", time.time(),
                                          (LocalDelivery(a.id, a.address, "INBOX", b""),)))
    from dizimail.storage.sqlite.bayes import SqliteBayesStore
    learnt = SqliteBayesStore(meta.db)  # a user moved it into Junk: the filter noted it learnt it
    await learnt.mark_learned("a@example.test", blob.id, spam=True)
    box = await meta.get_mailbox(a.id, "INBOX")
    await meta.expunge(box.id, [1])
    assert (await meta.get_account("a@example.test")).used_bytes == 0
    assert await meta.sweep_blobs(grace=3600) == 0 and blobs.exists(blob.id)  # kept for the grace period
    assert await learnt.learned_as("a@example.test", blob.id) is True
    assert await meta.sweep_blobs(grace=0) == 1
    assert await learnt.learned_as("a@example.test", blob.id) is None  # the note goes with the blob
    assert not blobs.exists(blob.id)  # out of reach at once; its space comes back with purge
    assert blobs.purge() == 1 and blobs.purge() == 0


async def test_discarded_blobs_left_by_a_crash_are_purged_at_start(stores):
    """A sweep renames its blobs aside in its transaction and unlinks them after it; a crash in
    between leaves them for clean_tmp at the next start, and a blob discarded then written again
    (the same bytes) is the new copy."""
    _meta, _queue, blobs = stores
    kept = put_blob(blobs, b"Subject: back\r\n\r\nagain\r\n")
    blobs.discard(kept.id)
    blobs.discard(put_blob(blobs, b"Subject: gone\r\n\r\nfor good\r\n").id)
    blobs.discard("0" * 64)  # absent: ignored
    again = put_blob(blobs, b"Subject: back\r\n\r\nagain\r\n")
    assert again.id == kept.id and blobs.exists(again.id)
    assert blobs.clean_tmp() == 2
    with blobs.open(again.id) as handle:
        assert handle.read() == b"Subject: back\r\n\r\nagain\r\n"


async def test_identical_content_takes_an_unreferenced_blob_back(stores):
    meta, _queue, blobs = stores
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    a = await meta.get_account("a@example.test")
    blob = put_blob(blobs, b"Subject: twice\r\n\r\nsame bytes\r\n")
    await meta.commit_ingest(IngestRecord("Q1", blob, "", time.time(), (LocalDelivery(a.id, a.address, "INBOX", b""),)))
    box = await meta.get_mailbox(a.id, "INBOX")
    await meta.expunge(box.id, [1])
    again = put_blob(blobs, b"Subject: twice\r\n\r\nsame bytes\r\n")
    await meta.commit_ingest(IngestRecord("Q2", again, "", time.time(), (LocalDelivery(a.id, a.address, "INBOX", b""),)))
    assert await meta.sweep_blobs(grace=0) == 0
    assert blobs.exists(blob.id) and [e.uid for e in await meta.list_messages(box.id)] == [2]


async def test_commit_refuses_a_vanished_blob(stores):
    meta, _queue, blobs = stores
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    a = await meta.get_account("a@example.test")
    blob = put_blob(blobs, b"gone")
    blobs.discard(blob.id)
    with pytest.raises(TemporaryFailure):
        await meta.commit_ingest(IngestRecord("Q", blob, "", time.time(),
                                              (LocalDelivery(a.id, a.address, "INBOX", b""),)))
    assert await meta.list_messages((await meta.get_mailbox(a.id, "INBOX")).id) == []


async def test_a_delivery_past_its_limit_is_refused_atomically_and_its_fallback_queued(stores):
    """Storage honours the limit it is handed (the policy's quota rule decides it) and decides nothing
    itself: a refused delivery queues its fallback beside what was stored; alone, nothing is written."""
    meta, queue, blobs = stores
    await meta.add_domain("example.test")
    await meta.add_accounts([("full@example.test", HASH, "", 10), ("ok@example.test", HASH, "", 0)])
    full, ok = await meta.get_account("full@example.test"), await meta.get_account("ok@example.test")
    blob = put_blob(blobs, b"x" * 100)
    fallback = QueuedRecipient(full.address, status="deferred", last_error="452 4.2.2 mailbox full")
    alone = await meta.commit_ingest(IngestRecord("Q1", blob, "", time.time(), (
        LocalDelivery(full.id, full.address, "INBOX", b"", limit=99, fallback=fallback),)))
    assert alone.delivered == () and alone.refused == ("full@example.test",)
    assert await queue.list_queue() == []
    assert await meta.list_messages((await meta.get_mailbox(full.id, "INBOX")).id) == []
    result = await meta.commit_ingest(IngestRecord("Q2", blob, "", time.time(), (
        LocalDelivery(full.id, full.address, "INBOX", b"", limit=99, fallback=fallback),
        LocalDelivery(ok.id, ok.address, "INBOX", b""))))
    assert result.delivered == (ok.id,) and result.refused == ("full@example.test",)
    [entry] = await queue.list_queue()
    assert entry.recipients[0].status == "deferred" and "4.2.2" in entry.recipients[0].last_error
    # Exactly at the limit is within it.
    exact = await meta.commit_ingest(IngestRecord("Q3", blob, "", time.time(), (
        LocalDelivery(full.id, full.address, "INBOX", b"", limit=100),)))
    assert exact.delivered == (full.id,)


async def test_concurrent_commits_are_grouped_and_all_durable(stores):
    meta, _queue, blobs = stores
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    a = await meta.get_account("a@example.test")

    async def one(n: int) -> None:
        blob = put_blob(blobs, f"message {n}".encode())
        await meta.commit_ingest(IngestRecord(f"Q{n}", blob, "", time.time(),
                                              (LocalDelivery(a.id, a.address, "INBOX", b""),)))
    await asyncio.gather(*(one(n) for n in range(200)))
    entries = await meta.list_messages((await meta.get_mailbox(a.id, "INBOX")).id)
    assert [e.uid for e in entries] == list(range(1, 201))


async def test_search_index_finds_cjk_and_ascii_substrings(stores, tmp_path):
    from email.header import Header

    from dizimail.services.messages import describe_blob
    from dizimail.storage.sqlite.search import SqliteSearchIndex

    meta, _queue, blobs = stores
    index = SqliteSearchIndex(meta.db)
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    a = await meta.get_account("a@example.test")
    subject = Header("电厂运行日报", "gb2312").encode()
    messages = [
        (f"Subject: {subject}\r\nFrom: Zhang <zhang@plant.example>\r\nContent-Type: text/plain; charset=gb2312\r\n"
         "\r\n").encode() + "锅炉压力正常，发电量稳定。".encode("gb2312"),
        b"Subject: Weekly REPORT\r\nFrom: Bob <bob@example.org>\r\nTo: team@example.test\r\n\r\nAll quiet.\r\n",
    ]
    for n, raw in enumerate(messages):
        blob = put_blob(blobs, raw)
        await meta.commit_ingest(IngestRecord(f"Q{n}", blob, "", time.time(),
                                              (LocalDelivery(a.id, a.address, "INBOX", b""),),
                                              meta=describe_blob(raw, with_search=True)))
    box = (await meta.get_mailbox(a.id, "INBOX")).id
    assert await index.search(box, "subject", "电厂") == {1}  # two characters: below a trigram
    assert await index.search(box, "subject", "运行日报") == {1}
    assert await index.search(box, "body", "发电量") == {1}
    assert await index.search(box, "text", "zhang@plant") == {1}
    assert await index.search(box, "subject", "weekly report") == {2}  # case-insensitive
    assert await index.search(box, "from", "BOB") == {2}
    assert await index.search(box, "to", "team@") == {2}
    assert await index.search(box, "body", "nothing like this") == set()
    assert await index.unindexed(box) == []


async def test_long_search_terms_are_looked_for_in_linear_time(stores):
    """SQLite's instr() compares the whole term at every position of the text: a 75,000-character term
    against the 200,000 characters of body text kept per message is 10^10 compares (a quarter of a
    second a message, up to 1,000 messages a search key; a user chooses both, the body through port
    25). Terms over LONG_TERM characters go to dz_contains (Python's str search, linear): a check that
    the answers stay the same, in the body and in header fields (it does not time them)."""
    from dizimail.services.messages import BODY_TEXT_LIMIT, describe_blob
    from dizimail.storage.sqlite.search import LONG_TERM, SqliteSearchIndex

    meta, _queue, blobs = stores
    index = SqliteSearchIndex(meta.db)
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    a = await meta.get_account("a@example.test")
    raw = (b"Subject: " + b"s" * 2000 + b" end\r\nX-Note: " + b"n" * 2000 + b" tail\r\n\r\n"
           + b"a" * (BODY_TEXT_LIMIT - 100) + b" marker\r\n")
    blob = put_blob(blobs, raw)
    await meta.commit_ingest(IngestRecord("Q1", blob, "", time.time(), (LocalDelivery(a.id, a.address, "INBOX", b""),),
                                          meta=describe_blob(raw, with_search=True)))
    box = (await meta.get_mailbox(a.id, "INBOX")).id
    assert await index.search(box, "body", "a" * 75_000 + "b") == set()
    assert await index.search(box, "body", "a" * (LONG_TERM + 10) + " marker") == {1}
    assert await index.search(box, "text", "A" * 75_000) == {1}  # case-insensitive as before
    assert await index.search(box, "subject", "s" * 1000 + " end") == {1}
    assert await index.search_header(box, "x-note", "n" * 1500 + " tail") == {1}
    assert await index.search_header(box, "x-note", "n" * 100_000) == set()
    assert await index.search(box, "body", "marker") == {1}  # short terms: instr(), as before


async def test_search_index_uses_fts_for_large_mailboxes(stores, monkeypatch):
    from dizimail.services.messages import describe_blob
    from dizimail.storage.sqlite import search

    monkeypatch.setattr(search, "SCAN_BELOW", 0)  # force the trigram path on a small mailbox
    meta, _queue, blobs = stores
    index = search.SqliteSearchIndex(meta.db)
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    a = await meta.get_account("a@example.test")
    for n, raw in enumerate([b"Subject: Turbine maintenance\r\n\r\nx\r\n", "Subject: 电厂运行日报\r\n\r\ny\r\n".encode()]):
        blob = put_blob(blobs, raw)
        await meta.commit_ingest(IngestRecord(f"Q{n}", blob, "", time.time(),
                                              (LocalDelivery(a.id, a.address, "INBOX", b""),),
                                              meta=describe_blob(raw, with_search=True)))
    box = (await meta.get_mailbox(a.id, "INBOX")).id
    assert await index.search(box, "subject", "TURBINE main") == {1}
    assert await index.search(box, "subject", "运行日") == {2}
    assert await index.search(box, "subject", "电厂") == {2}


async def _indexed_account(stores):
    """A Mailstore with its search index, and an account to deliver to."""
    from dizimail.services.mailstore import Mailstore
    from dizimail.services.notify import Notifier
    from dizimail.storage.sqlite.search import SqliteSearchIndex

    meta, _queue, blobs = stores
    index = SqliteSearchIndex(meta.db)
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    return Mailstore(meta, blobs, Notifier(), index), index, await meta.get_account("a@example.test")


async def test_indexer_adds_documents_for_new_messages(stores):
    from dizimail.services.messages import describe_blob

    meta, _queue, blobs = stores
    mailstore, index, a = await _indexed_account(stores)
    raw = "Subject: 锅炉检修通知\r\n\r\n明天上午九点开始。\r\n".encode()
    blob = put_blob(blobs, raw)
    await meta.commit_ingest(IngestRecord("Q", blob, "", time.time(), (LocalDelivery(a.id, a.address, "INBOX", b""),),
                                          meta=describe_blob(raw)))
    box = (await meta.get_mailbox(a.id, "INBOX")).id
    assert await index.unindexed(box) == [blob.id]
    assert await mailstore.index_pending() == 1
    assert await index.unindexed(box) == []
    assert await index.search(box, "subject", "检修") == {1}
    assert await mailstore.index_pending() == 0


async def test_an_indexer_run_takes_one_batch_or_the_backlog(stores):
    """Budget 0 (a long burst of mail, IndexPacer): one batch; otherwise the whole backlog."""
    from dizimail.services.search import BATCH

    meta, _queue, blobs = stores
    mailstore, _index, a = await _indexed_account(stores)
    for n in range(BATCH * 2 + 10):
        blob = put_blob(blobs, f"Subject: report {n}\r\n\r\nnumber {n}\r\n".encode())
        await meta.commit_ingest(IngestRecord(f"Q{n}", blob, "", time.time(),
                                              (LocalDelivery(a.id, a.address, "INBOX", b""),)))
    assert await mailstore.index_pending(0.0) == BATCH
    assert await mailstore.index_pending() == BATCH + 10
    assert await mailstore.index_pending() == 0


async def test_indexer_leaves_relayed_mail_alone_until_a_mailbox_holds_it(stores, monkeypatch):
    """Only blobs that a mailbox message references get a search document: mail that is only
    queued (relayed out) is never indexed. A blob that gains its first mailbox message later (the
    same bytes delivered locally) is found by the periodic look over every blob."""
    import dizimail.storage.sqlite.search as search_module
    from dizimail.storage.sqlite.search import SqliteSearchIndex

    meta, _queue, blobs = stores
    index = SqliteSearchIndex(meta.db)
    await meta.add_domain("example.test")
    await meta.add_accounts([("a@example.test", HASH, "", 0)])
    a = await meta.get_account("a@example.test")
    relayed = put_blob(blobs, b"Subject: out\r\n\r\nto the world\r\n")
    await meta.commit_ingest(IngestRecord("R1", relayed, "a@example.test", time.time(),
                                          queued=(QueuedRecipient("x@remote.test"),)))
    stored = put_blob(blobs, b"Subject: in\r\n\r\nfor a\r\n")
    await meta.commit_ingest(IngestRecord("L1", stored, "", time.time(),
                                          (LocalDelivery(a.id, a.address, "INBOX", b""),)))
    assert await index.pending(100) == [stored.id]
    assert await index.pending(100) == []  # nothing new since the last look
    await meta.commit_ingest(IngestRecord("L2", put_blob(blobs, b"Subject: out\r\n\r\nto the world\r\n"), "",
                                          time.time(), (LocalDelivery(a.id, a.address, "INBOX", b""),)))
    assert await index.pending(100) == []  # the same blob row as before: the regular look starts after it
    monkeypatch.setattr(search_module, "FULL_CHECK", 0.0)
    assert await index.pending(100) == [relayed.id, stored.id]  # in row order


async def test_a_backlog_of_deferred_mail_is_leased_oldest_first_without_a_scan_per_message(stores):
    """After an outage every deferred message is due at once. A lease takes the oldest with a due
    recipient and no live lease, and finds them through the due index once: the plan has no subquery
    run again per queued message (that was quadratic: 3.6 s per lease with 6,000 due; bench/queue_backlog.py)."""
    from dizimail.model.outbound import RcptStatus, RecipientOutcome
    from dizimail.storage.sqlite.queue import _DUE

    meta, queue, blobs = stores
    start = time.time() - 1000
    for n in range(60):
        await meta.commit_ingest(IngestRecord(f"B{n:03d}", put_blob(blobs, b"Subject: %d\r\n\r\nx\r\n" % n),
                                              "a@example.test", start + n, queued=(QueuedRecipient(f"x{n}@remote.test"),)))
    first = await queue.lease("one", time.time(), time.time() + 300, 10)
    assert [i.queue_id for i in first] == [f"B{n:03d}" for n in range(10)]
    for item in first[:5]:  # deferred for later: not due now
        await queue.settle("one", item.queue_id, [RecipientOutcome(item.recipients[0].id, RcptStatus.DEFERRED,
                                                                   "451 later", time.time() + 3600)], release=True)
    second = await queue.lease("two", time.time(), time.time() + 300, 10)
    assert [i.queue_id for i in second] == [f"B{n:03d}" for n in range(10, 20)]  # leased and deferred ones skipped
    # The due look-up is a read outside the write lock: two runners reading the same candidates at once
    # never both take one, and a message held since the read is not taken.
    await queue.set_held("B025", True)
    three, four = await asyncio.gather(*(queue.lease(owner, time.time(), time.time() + 300, 10)
                                         for owner in ("three", "four")))
    taken = [i.queue_id for i in three] + [i.queue_id for i in four]
    # Which of the two writes comes first is the scheduler's choice: the first takes what both read.
    assert len(taken) == len(set(taken)) and (three or four) and "B025" not in taken, (three, four)
    # Read at once, they share ten candidates; read one after the other, the second gets the next ten, up to
    # B040 (B025 is held).
    assert set(taken) <= {f"B{n:03d}" for n in range(20, 41)}, taken
    plan = [r[3] for r in meta.db.quick().execute("EXPLAIN QUERY PLAN " + _DUE, (0, 0, 10))]
    assert not [step for step in plan if "CORRELATED" in step], plan


async def test_access_lists_store(stores):
    """The block and allow lists (interfaces/access.py): unique per list, scope and pattern; the version
    moves with every addition and removal, also one that leaves the count as it was."""
    from dizimail.model.access import AccessEntry, ListName
    from dizimail.storage.sqlite.access import SqliteAccessListStore

    meta, _queue, _blobs = stores
    store = SqliteAccessListStore(meta.db)
    empty = await store.access_version()
    entries = [AccessEntry(ListName.BLOCK, "", "@usa.test", "spam"), AccessEntry(ListName.BLOCK, "a.test", "@usa.test"),
               AccessEntry(ListName.ALLOW, "", "@usa.test"), AccessEntry(ListName.BLOCK, "", "@usa.test")]
    assert await store.add_access(entries) == 3
    one = await store.access_version()
    assert one != empty
    listed = await store.list_access()
    assert [(e.list, e.scope, e.pattern, e.note) for e in listed] == [
        (ListName.ALLOW, "", "@usa.test", ""), (ListName.BLOCK, "", "@usa.test", "spam"),
        (ListName.BLOCK, "a.test", "@usa.test", "")]
    assert all(e.created > 0 for e in listed)
    await store.remove_access(ListName.BLOCK, "a.test", "@usa.test")
    await store.add_access([AccessEntry(ListName.BLOCK, "b.test", "@usa.test")])  # same count, new version
    assert await store.access_version() not in (one, empty)
    with pytest.raises(NotFound):
        await store.remove_access(ListName.BLOCK, "a.test", "@usa.test")


async def test_personal_models_in_memory_are_bounded_and_counts_need_no_load(stores):
    """services.content.filter over a real store: whether a model learnt enough is read from its counts
    (nothing loaded), and past the token budget the least recently used personal models leave memory
    (the global one stays); a model that left is loaded again when it scores."""
    from dizimail.services.content.filter import GLOBAL, ContentFilter
    from dizimail.storage.sqlite.bayes import SqliteBayesStore

    meta, _queue, _blobs = stores
    store = SqliteBayesStore(meta.db)
    await store.apply(GLOBAL, 1, 1, {"g1": (1, 0), "g2": (0, 1)})
    for n in range(4):
        await store.apply(f"u{n}@example.test", 3, 2, {f"t{n}-{i}": (1, 0) for i in range(10)})
    content = ContentFilter(store, personal_tokens=25)
    assert await content.trained("u0@example.test") == (3, 2) and content.cached() == []
    await content.model(GLOBAL)
    for n in range(4):
        assert (await content.model(f"u{n}@example.test")).nspam == 3
    assert content.cached() == [GLOBAL, "u2@example.test", "u3@example.test"]  # 20 tokens kept of 40
    await content.model("u1@example.test")
    assert content.cached() == [GLOBAL, "u3@example.test", "u1@example.test"]
    assert (await content.model("u1@example.test")).counts["t1-0"] == [1, 0]


async def test_whitelist_entries_are_removed_and_expire(stores):
    from dizimail.storage.sqlite.bayes import SQL_AWL_EXPIRE, SqliteWhitelistStore

    meta, _queue, _blobs = stores
    store = SqliteWhitelistStore(meta.db)
    await store.awl_add([("a@x.test", "example.test"), ("b@x.test", "example.test")], clean=1)
    await store.awl_add([("a@x.test", "other.test")], written=True)
    assert await store.awl_remove([("a@x.test", "example.test"), ("nobody@x.test", "example.test")]) == 1
    assert await store.awl_get("a@x.test", ["example.test", "other.test"]) == {"other.test": (0, True)}
    assert await store.awl_expire(time.time() - 60) == 0
    assert await store.awl_expire(time.time() + 60) == 2
    plan = [r[3] for r in meta.db.quick().execute("EXPLAIN QUERY PLAN " + SQL_AWL_EXPIRE, (0,))]
    assert [step for step in plan if "ix_awl_updated" in step], plan  # the sweeper never scans the table
    assert await store.awl_get("b@x.test", ["example.test"]) == {}


async def test_bayes_store_counts_and_unlearns(stores):
    """The content filter's counts (interfaces/bayes.py): deltas add up, unlearning never goes below
    zero, tokens back at 0/0 are gone, the version moves with every change."""
    from dizimail.storage.sqlite.bayes import SqliteBayesStore

    meta, _queue, _blobs = stores
    store = SqliteBayesStore(meta.db)
    assert await store.load_model("") == (0, 0, {}, 0)
    v1 = await store.apply("", 2, 0, {"viagra": (2, 0), "common": (2, 0)})
    v2 = await store.apply("", 0, 1, {"common": (0, 1), "meeting": (0, 1)})
    assert v2 > v1 and await store.model_version("") == v2
    assert await store.load_model("") == (2, 1, {"viagra": [2, 0], "common": [2, 1], "meeting": [0, 1]}, v2)
    await store.apply("", -3, 0, {"viagra": (-3, 0), "never": (-1, 0)})
    nspam, nham, tokens, _ = await store.load_model("")
    assert (nspam, nham) == (0, 1) and "viagra" not in tokens and "never" not in tokens
    assert await store.load_model("alice@example.test") == (0, 0, {}, 0)  # models are separate
