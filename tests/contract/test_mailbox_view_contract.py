"""The MetaStore calls behind a session's view of a large mailbox (services.selected).

SELECT reads UIDs and counters, not rows; commands read rows a batch at a time; expunged rows
stay readable for the blob grace period. Interface methods only, as in test_storage_contract.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from dizimail.app.build import open_database
from dizimail.config.schema import Config, ServerConfig
from dizimail.interfaces import BlobStore, MetaStore
from dizimail.model.errors import NotFound
from dizimail.model.types import IngestRecord, LocalDelivery
from dizimail.services.selected import SelectedMailbox
from dizimail.storage.sqlite.meta import SqliteMetaStore

HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


@pytest.fixture(params=["sqlite"])
async def stores(request, tmp_path) -> AsyncIterator[tuple[MetaStore, BlobStore]]:
    config = Config(server=ServerConfig(data_dir=tmp_path))
    db, blobs = open_database(config)
    db.start()
    try:
        yield SqliteMetaStore(db, blobs), blobs
    finally:
        db.close()


@pytest.fixture
def meta(stores) -> MetaStore:
    return stores[0]


@pytest.fixture
def inbox_with(stores):
    meta, blobs = stores

    async def make(flag_sets: list[tuple[str, ...]]) -> int:
        """An INBOX holding one message per entry of ``flag_sets`` (UIDs 1..n); returns its id."""
        await meta.add_domain("example.test")
        await meta.add_accounts([("a@example.test", HASH, "", 0)])
        a = await meta.get_account("a@example.test")
        writer = blobs.writer()
        writer.write(b"Subject: many\r\n\r\nbody\r\n")
        blob = writer.finish()
        deliveries = tuple(LocalDelivery(a.id, a.address, "INBOX", b"P:%d\r\n" % i, flags)
                           for i, flags in enumerate(flag_sets))
        await meta.commit_ingest(IngestRecord("Q", blob, "", time.time(), deliveries))
        return (await meta.get_mailbox(a.id, "INBOX")).id
    return make


async def test_snapshot_has_uids_counters_first_unseen_and_keywords_without_rows(meta, inbox_with):
    box = await inbox_with([("\\Seen",), ("\\Seen", "$Work"), (), ("$Later", "\\Flagged"), ()])
    snap = await meta.snapshot_mailbox(box)
    assert list(snap.uids) == [1, 2, 3, 4, 5] and snap.uids.itemsize == 4
    assert snap.uidnext == 6 and snap.first_unseen == 3 and snap.keywords == ("$Later", "$Work")
    assert snap.recent_from == 1 and snap.highestmodseq == (await meta.mailbox_status(box)).highestmodseq
    await meta.store_flags(box, [3, 4, 5], "+", ("\\Seen",))
    await meta.expunge(box, [2])
    snap = await meta.snapshot_mailbox(box)
    assert list(snap.uids) == [1, 3, 4, 5] and snap.first_unseen is None and snap.keywords == ("$Later",)
    with pytest.raises(NotFound):
        await meta.snapshot_mailbox(box + 1000)


async def test_snapshot_of_an_empty_mailbox(meta, inbox_with):
    box = await inbox_with([])
    snap = await meta.snapshot_mailbox(box)
    assert list(snap.uids) == [] and snap.first_unseen is None and snap.keywords == () and snap.uidnext == 1


async def test_take_recent_claims_a_uid_range_once(meta, inbox_with):
    box = await inbox_with([(), (), ()])
    assert await meta.take_recent(box) == (1, 4)
    assert await meta.take_recent(box) == (4, 4)  # a later session: nothing is recent for it
    assert (await meta.snapshot_mailbox(box)).recent_from == 4


async def test_message_rows_in_uid_order_for_dense_and_sparse_sets(meta, inbox_with):
    box = await inbox_with([("\\Seen",)] * 1200)
    rows = await meta.message_rows(box, [5, 6, 7, 9])
    assert [r.uid for r in rows] == [5, 6, 7, 9] and rows[0].flags == ("\\Seen",) and rows[0].prefix == b"P:4\r\n"
    sparse = [1, 400, 800, 1200, 5000]
    assert [r.uid for r in await meta.message_rows(box, sparse)] == [1, 400, 800, 1200]
    assert [r.uid for r in await meta.message_rows(box, list(range(1, 1201)))] == list(range(1, 1201))
    assert await meta.message_rows(box, []) == []


async def test_expunged_rows_stay_readable_for_the_grace_period(meta, inbox_with):
    box = await inbox_with([(), ("$Keep",), ()])
    await meta.store_flags(box, [2], "+", ("\\Deleted",))
    assert await meta.deleted_uids(box) == [2]
    await meta.expunge(box, await meta.deleted_uids(box))
    assert await meta.deleted_uids(box) == []
    rows = await meta.message_rows(box, [1, 2, 3])
    assert [r.uid for r in rows] == [1, 2, 3] and rows[1].flags == ("$Keep", "\\Deleted")
    assert list((await meta.snapshot_mailbox(box)).uids) == [1, 3]  # gone for everyone else
    await meta.sweep_blobs(grace=3600)
    assert [r.uid for r in await meta.message_rows(box, [1, 2, 3])] == [1, 2, 3]
    await meta.sweep_blobs(grace=0)
    assert [r.uid for r in await meta.message_rows(box, [1, 2, 3])] == [1, 3]


async def test_a_qresync_report_holds_only_what_the_view_snapshot_reflects(meta, inbox_with):
    """QRESYNC SELECT reads the changes after the snapshot: an expunge or flag change made in between
    is left to the next poll, which reports it against the view's sequence numbers."""
    box = await inbox_with([(), (), (), ()])
    await meta.expunge(box, [1])  # before the snapshot: VANISHED (EARLIER)
    account = await meta.get_account("a@example.test")
    view = SelectedMailbox(meta, await meta.get_mailbox(account.id, "INBOX"), readonly=True)
    await view.open()
    assert list(view.uids) == [2, 3, 4]
    await meta.store_flags(box, [3], "+", ("\\Flagged",))  # after it
    await meta.expunge(box, [2])
    vanished, changed = view.resync(await meta.mailbox_changes(box, 0, 1 << 62))
    assert vanished == [1]
    assert [c.uid for c in changed] == [4]
    update = await view.poll(allow_expunge=True)
    assert update.expunged_uids == [2] and update.expunged == [1]
    assert [(seq, uid, flags) for seq, uid, flags, _ in update.flags] == [(1, 3, ("\\Flagged", "\\Recent"))]


async def test_kept_uids_and_counts_follow_changes_made_by_another_process(stores, inbox_with):
    """SELECT's UIDs and STATUS's counts are kept per mailbox version: a second store on the same
    database (another process: the queue runner, the command line) changes the mailbox, and the
    first one answers the new state, never the kept one."""
    meta, blobs = stores
    box = await inbox_with([(), (), ("\\Seen",)])
    first = await meta.snapshot_mailbox(box)
    first.uids.pop()  # a view changes its own copy, never the kept one
    assert list((await meta.snapshot_mailbox(box)).uids) == [1, 2, 3]
    assert (await meta.mailbox_status(box)).unseen == 2
    other = SqliteMetaStore(meta.db, blobs)  # type: ignore[attr-defined]
    await other.store_flags(box, [1], "+", ("\\Seen",))
    assert (await meta.mailbox_status(box)).unseen == 1
    assert (await meta.snapshot_mailbox(box)).first_unseen == 2
    await other.expunge(box, [2])
    assert list((await meta.snapshot_mailbox(box)).uids) == [1, 3]
    assert (await meta.mailbox_status(box)).messages == 2
    await other.copy_messages(box, [1], box)
    assert list((await meta.snapshot_mailbox(box)).uids) == [1, 3, 4]
    status = await meta.mailbox_status(box)
    assert (status.messages, status.unseen, status.uidnext) == (3, 0, 5)


async def test_status_counts_stay_true_through_every_kind_of_change(stores, inbox_with):
    """STATUS reads counts kept as messages change (migration 0008): after deliveries, flag changes,
    copies, moves and expunges they must equal a count of the rows."""
    meta, _blobs = stores
    box = await inbox_with([(), ("\\Seen",), ("\\Deleted",), ("\\Seen", "\\Deleted"), ("$Work",)])
    account = await meta.get_account("a@example.test")
    archive = (await meta.get_mailbox(account.id, "Archive")).id

    async def check(mailbox: int) -> None:
        rows = await meta.list_messages(mailbox)
        status = await meta.mailbox_status(mailbox)
        assert (status.messages, status.size, status.unseen, status.deleted) == (
            len(rows), sum(r.size for r in rows), sum("\\Seen" not in r.flags for r in rows),
            sum("\\Deleted" in r.flags for r in rows))

    await check(box)
    await meta.store_flags(box, [1, 2, 5], "+", ("\\Seen",))
    await meta.store_flags(box, [2, 3], "-", ("\\Seen", "\\Deleted"))
    await meta.store_flags(box, [4], "", ("\\Flagged",))
    await check(box)
    await meta.copy_messages(box, [1, 2], archive)
    await meta.copy_messages(box, [3], archive, move=True)
    await check(box)
    await check(archive)
    await meta.expunge(box, [1, 4])
    await check(box)
    await meta.delete_mailbox(account.id, "Archive")
    await check(box)


async def test_find_status_is_the_mailbox_and_its_counters_in_one_read(meta, inbox_with):
    box = await inbox_with([(), ("\\Seen",), ("\\Deleted",)])
    account = await meta.get_account("a@example.test")
    info, status = await meta.find_status(account.id, "INBOX")
    assert info == await meta.get_mailbox(account.id, "INBOX") and info.id == box
    assert status == await meta.mailbox_status(box)
    assert (status.messages, status.unseen, status.deleted) == (3, 2, 1)
    assert await meta.find_status(account.id, "Nowhere") is None


async def test_rows_read_again_show_what_another_process_changed(stores, inbox_with, tmp_path):
    """The rows a store keeps between reads (RowCache) follow changes made through another
    connection to the same database, as the CLI or the queue-runner child make them: flag changes
    (one and many more than a refresh reads), and a mailbox deleted and created again under the
    same id."""
    meta, _blobs = stores
    box = await inbox_with([()] * 600)
    other_db, other_blobs = open_database(Config(server=ServerConfig(data_dir=tmp_path)))
    other_db.start()
    try:
        other = SqliteMetaStore(other_db, other_blobs)
        assert [e.flags for e in await meta.message_rows(box, [1, 2, 3])] == [(), (), ()]
        await other.store_flags(box, [2], "+", ("\\Seen",))
        assert [e.flags for e in await meta.message_rows(box, [1, 2, 3])] == [(), ("\\Seen",), ()]
        rows = await meta.message_rows(box, list(range(1, 601)))
        assert all(e.flags == () for e in rows if e.uid != 2)
        await other.store_flags(box, list(range(1, 601)), "+", ("$Work",))  # 600 rows: past a refresh
        rows = await meta.message_rows(box, list(range(1, 601)))
        assert len(rows) == 600 and all("$Work" in e.flags for e in rows)
        modseqs = {e.uid: e.modseq for e in rows}
        await other.expunge(box, [5])
        rows = await meta.message_rows(box, [4, 5, 6])  # 5 is still readable (expunge grace period)
        assert [e.uid for e in rows] == [4, 5, 6] and rows[0].modseq == modseqs[4]

        account = await meta.get_account("a@example.test")
        doomed = await meta.create_mailbox(account.id, "Doomed")

        async def deliver(store: MetaStore, mailbox: str, text: bytes) -> str:
            writer = _blobs.writer()
            writer.write(text)
            blob = writer.finish()
            await store.commit_ingest(IngestRecord(mailbox, blob, "", time.time(),
                                                   (LocalDelivery(account.id, account.address, mailbox, b"", ()),)))
            return blob.id
        await deliver(meta, "Doomed", b"Subject: old\r\n\r\nold\r\n")
        old = (await meta.message_rows(doomed.id, [1]))[0]
        await other.delete_mailbox(account.id, "Doomed")
        reborn = await other.create_mailbox(account.id, "Reborn")
        assert reborn.id == doomed.id and reborn.uidvalidity != doomed.uidvalidity  # SQLite reuses the id
        blob_id = await deliver(other, "Reborn", b"Subject: new\r\n\r\nnew\r\n")
        new = (await meta.message_rows(reborn.id, [1]))[0]
        assert new.blob_id == blob_id != old.blob_id
    finally:
        other_db.close()
