"""Table definitions (SQLAlchemy Core). Schema changes are Alembic migrations in ``migrations/``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

domains = Table(
    "domains", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("alias_of", Integer, ForeignKey("domains.id", ondelete="CASCADE"), nullable=True),
    Column("status", String, nullable=False),
    Column("created", Float, nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("domain_id", Integer, ForeignKey("domains.id"), nullable=False),
    Column("local_part", String, nullable=False),
    Column("password_hash", String, nullable=False),
    Column("name", String, nullable=False),
    Column("quota_bytes", BigInteger, nullable=False),
    Column("used_bytes", BigInteger, nullable=False),
    Column("message_count", Integer, nullable=False),
    Column("status", String, nullable=False),
    Column("created", Float, nullable=False),
    Column("last_uidvalidity", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("domain_id", "local_part"),
)

aliases = Table(
    "aliases", metadata,
    Column("id", Integer, primary_key=True),
    Column("domain_id", Integer, ForeignKey("domains.id"), nullable=False),
    Column("local_part", String, nullable=False),
    UniqueConstraint("domain_id", "local_part"),
)

alias_targets = Table(
    "alias_targets", metadata,
    Column("alias_id", Integer, ForeignKey("aliases.id", ondelete="CASCADE"), primary_key=True),
    Column("target", String, primary_key=True),
)

mailboxes = Table(
    "mailboxes", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String, nullable=False),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uidnext", BigInteger, nullable=False),
    Column("highestmodseq", BigInteger, nullable=False),
    Column("special_use", String, nullable=True),
    Column("recent_uid", BigInteger, nullable=False, server_default="1"),
    UniqueConstraint("account_id", "name"),
)

messages = Table(
    "messages", metadata,
    Column("id", Integer, primary_key=True),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    Column("flags", String, nullable=False),
    Column("internal_date", Float, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("blob_id", String, nullable=False),
    Column("prefix", LargeBinary, nullable=False),
    Column("queue_id", String, nullable=False),
    UniqueConstraint("mailbox_id", "uid"),
    Index("ix_messages_blob", "blob_id"),
    Index("ix_messages_modseq", "mailbox_id", "modseq"),
)

subscriptions = Table(
    "subscriptions", metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String, primary_key=True),
)

expunged = Table(
    "expunged", metadata,
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True),
    Column("uid", BigInteger, primary_key=True),
    Column("modseq", BigInteger, nullable=False),
    Index("ix_expunged_modseq", "mailbox_id", "modseq"),
)

blobs = Table(
    "blobs", metadata,
    Column("id", String, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("refcount", Integer, nullable=False),
    Column("envelope", LargeBinary, nullable=True),  # IMAP ENVELOPE, computed once per blob
    Column("bodystructure", LargeBinary, nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("zero_since", Float, nullable=True),  # unreferenced since; swept after a grace period
    Index("ix_blobs_zero_since", "zero_since"),
)

queue = Table(
    "queue", metadata,
    Column("id", String, primary_key=True),
    Column("blob_id", String, nullable=False),
    Column("sender", String, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created", Float, nullable=False),
    Column("params", String, nullable=False),
    Column("prefix", LargeBinary, nullable=False),
)

queue_recipients = Table(
    "queue_recipients", metadata,
    Column("id", Integer, primary_key=True),
    Column("queue_id", String, ForeignKey("queue.id", ondelete="CASCADE"), nullable=False),
    Column("address", String, nullable=False),
    Column("notify", String, nullable=True),
    Column("orcpt", String, nullable=True),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", Float, nullable=False),
    Column("last_error", String, nullable=False),
    Column("lease_owner", String, nullable=True),
    Column("lease_expiry", Float, nullable=True),
    Index("ix_queue_recipients_due", "status", "next_attempt"),
    Index("ix_queue_recipients_queue", "queue_id"),
)
