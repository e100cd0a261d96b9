"""SQLite only: the queries behind SELECT, SORT and SEARCH use the indexes made for them (0007, 0008).

SQLite uses a partial index only when the query repeats its condition verbatim; a query whose
text drifts from the migration's would still answer right, by reading every row of the mailbox.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dizimail.app.build import open_database
from dizimail.config.schema import Config, ServerConfig
from dizimail.storage.sqlite.mailboxes import (
    SQL_DELETED_UIDS,
    SQL_FIRST_UNSEEN,
    SQL_KEYWORD_FLAGS,
)


@pytest.fixture
def raw(tmp_path) -> Iterator:
    db, _blobs = open_database(Config(server=ServerConfig(data_dir=tmp_path)))
    try:
        yield db.quick()
    finally:
        db.close()


@pytest.mark.parametrize(("query", "index"), [(SQL_FIRST_UNSEEN, "ix_messages_unseen"),
                                              (SQL_DELETED_UIDS, "ix_messages_deleted"),
                                              (SQL_KEYWORD_FLAGS, "ix_messages_keywords")])
def test_select_queries_use_their_partial_index(raw, query, index):
    plan = " ".join(str(row) for row in raw.execute("EXPLAIN QUERY PLAN " + query, (1,)))
    assert index in plan and "SCAN messages" not in plan, plan


def test_lookups_of_blobs_without_keys_or_documents_start_from_their_partial_index(raw):
    """From the few blobs that lack keys (or a search document) to their messages: starting from the
    mailbox's messages, SQLite (without statistics) probed every blob for every message."""
    from dizimail.storage.sqlite.keys import SQL_NO_KEYS
    from dizimail.storage.sqlite.search import SQL_UNINDEXED

    for query, index in ((SQL_NO_KEYS, "ix_blobs_no_keys"), (SQL_UNINDEXED, "ix_blobs_unindexed")):
        plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + query, (1,)) if "QUERY" not in row[3]]
        assert index in plan[0] and "ix_messages_blob" in plan[1], plan
    plan = " | ".join(row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + SQL_NO_KEYS, (1,)))
    assert "SEARCH messages USING INDEX ix_messages_date (mailbox_id=? AND sort_date=?)" in plan, plan


def test_sort_by_date_reads_one_index_without_joining_the_blobs(raw):
    from dizimail.storage.sqlite.keys import sort_sql

    for reverse in (True, False):
        plan = " | ".join(row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + sort_sql([("date", reverse)]), (1,)))
        assert "COVERING INDEX ix_messages_date" in plan and "blobs" not in plan, plan


def test_trigram_search_is_driven_from_the_index_hits(raw):
    """The hits of the trigram index join to the mailbox's messages, never the other way round:
    "d.id IN (SELECT rowid ... MATCH ?)" made SQLite probe every hit for every message (77 s)."""
    from dizimail.storage.sqlite.search import _SQL_FTS

    plan = " | ".join(row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + _SQL_FTS, (1, 'body : "x"', 10)))
    assert plan.index("SCAN hits") < plan.index("SEARCH d USING INTEGER PRIMARY KEY")
    assert "SEARCH m USING INDEX ix_messages_blob" in plan, plan
