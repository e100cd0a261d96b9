"""Search index: one document per blob (decoded headers and text), FTS5 trigram index over it.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE search_docs (id INTEGER PRIMARY KEY, blob_id TEXT NOT NULL UNIQUE, subject TEXT, "
               "addr_from TEXT, addr_to TEXT, addr_cc TEXT, addr_bcc TEXT, headers TEXT, body TEXT)")
    # External-content FTS5: the index only; the folded text lives once, in search_docs.
    op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(subject, addr_from, addr_to, addr_cc, addr_bcc, "
               "headers, body, content='search_docs', content_rowid='id', tokenize='trigram case_sensitive 1')")


def downgrade() -> None:
    op.execute("DROP TABLE search_fts")
    op.execute("DROP TABLE search_docs")
