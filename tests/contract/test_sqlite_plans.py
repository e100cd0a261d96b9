"""SQLite only: the queries behind SELECT and STATUS use the partial indexes of migration 0007.

SQLite uses a partial index only when the query repeats its condition verbatim; a query whose
text drifts from the migration's would still answer right, by reading every row of the mailbox.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dizimail.app.build import open_database
from dizimail.config.schema import Config, ServerConfig
from dizimail.storage.sqlite.mailboxes import (
    SQL_COUNT_DELETED,
    SQL_COUNT_UNSEEN,
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
                                              (SQL_KEYWORD_FLAGS, "ix_messages_keywords"),
                                              (SQL_COUNT_UNSEEN, "ix_messages_unseen"),
                                              (SQL_COUNT_DELETED, "ix_messages_deleted")])
def test_select_queries_use_their_partial_index(raw, query, index):
    plan = " ".join(str(row) for row in raw.execute("EXPLAIN QUERY PLAN " + query, (1,)))
    assert index in plan and "SCAN messages" not in plan, plan
