"""The content filter's model (anti-spam layer 4): message counts per model, token counts per model and
token (WITHOUT ROWID: the key is the row), and which messages (blobs) a model learnt and as what, so a
message moved into Junk twice counts once and one moved back out is unlearnt first. ``version`` counts
changes, so a process reloads a model only when another one trained it.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE bayes_models (name TEXT PRIMARY KEY, nspam INTEGER NOT NULL DEFAULT 0, "
               "nham INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0)")
    op.execute("CREATE TABLE bayes_tokens (model TEXT NOT NULL, token TEXT NOT NULL, spam INTEGER NOT NULL, "
               "ham INTEGER NOT NULL, PRIMARY KEY (model, token)) WITHOUT ROWID")
    op.execute("CREATE TABLE bayes_learned (model TEXT NOT NULL, blob_id TEXT NOT NULL, spam INTEGER NOT NULL, "
               "PRIMARY KEY (model, blob_id)) WITHOUT ROWID")


def downgrade() -> None:
    op.execute("DROP TABLE bayes_learned")
    op.execute("DROP TABLE bayes_tokens")
    op.execute("DROP TABLE bayes_models")
