"""Table definitions (SQLAlchemy Core). Schema changes are Alembic migrations in ``migrations/``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    text,
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
    # kept by triggers on messages (0008): what STATUS reports without counting
    Column("n_messages", BigInteger, nullable=False, server_default="0"),
    Column("n_bytes", BigInteger, nullable=False, server_default="0"),
    Column("n_unseen", BigInteger, nullable=False, server_default="0"),
    Column("n_deleted", BigInteger, nullable=False, server_default="0"),
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
    Column("sort_date", Float, nullable=True),  # SORT DATE (0008): sent date, else internal date; NULL: blob lacks keys
    UniqueConstraint("mailbox_id", "uid"),
    Index("ix_messages_blob", "blob_id"),
    Index("ix_messages_modseq", "mailbox_id", "modseq"),
    # SELECT without reading rows (0007): first unseen, \\Deleted for EXPUNGE, keywords in use
    Index("ix_messages_unseen", "mailbox_id", "uid", sqlite_where=text("' ' || flags || ' ' NOT LIKE '% \\Seen %'")),
    Index("ix_messages_deleted", "mailbox_id", "uid", sqlite_where=text("' ' || flags || ' ' LIKE '% \\Deleted %'")),
    Index("ix_messages_keywords", "mailbox_id", "flags", sqlite_where=text("(' ' || flags) GLOB '* [^\\]*'")),
    Index("ix_messages_date", "mailbox_id", "sort_date", text("uid DESC")),
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

# Rows of messages expunged less than storage.blob_grace ago, for sessions that still show them.
expunged_rows = Table(
    "expunged_rows", metadata,
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True),
    Column("uid", BigInteger, primary_key=True),
    Column("modseq", BigInteger, nullable=False),
    Column("flags", String, nullable=False),
    Column("internal_date", Float, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("blob_id", String, nullable=False),
    Column("prefix", LargeBinary, nullable=False),
    Column("expunged_at", Float, nullable=False),
    Index("ix_expunged_rows_at", "expunged_at"),
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
    # SORT/THREAD keys (0008), computed once per blob; base_subject NULL: not computed yet
    Column("base_subject", String, nullable=True),
    Column("reply", Integer, nullable=True),
    Column("sent", Float, nullable=True),
    Column("sent_day", Integer, nullable=True),
    Column("sort_from", String, nullable=True),
    Column("sort_to", String, nullable=True),
    Column("sort_cc", String, nullable=True),
    Column("display_from", String, nullable=True),
    Column("display_to", String, nullable=True),
    Column("message_id", String, nullable=True),
    Column("refs", String, nullable=True),
    Column("indexed", Integer, nullable=False, server_default="0"),  # has its search document
    Index("ix_blobs_zero_since", "zero_since"),
    Index("ix_blobs_no_keys", "id", sqlite_where=text("base_subject IS NULL")),
    Index("ix_blobs_unindexed", "id", sqlite_where=text("indexed = 0")),
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
    Column("held", Boolean, nullable=False, server_default="0"),
    Column("warned", Boolean, nullable=False, server_default="0"),  # a delay DSN went out
    Column("lease_owner", String, nullable=True),
    Column("lease_expiry", Float, nullable=False, server_default="0"),
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
    Column("updated", Float, nullable=False, server_default="0"),
    Column("sender", String, nullable=True),  # its own envelope sender (a list's VERP return path)
    Column("prefix", LargeBinary, nullable=True),  # header lines of its own, before the message's prefix
    Index("ix_queue_recipients_due", "status", "next_attempt"),
    Index("ix_queue_recipients_queue", "queue_id"),
)

routes = Table(
    "routes", metadata,
    Column("domain", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("host", String, nullable=False),
    Column("port", Integer, nullable=False),
    Column("created", Float, nullable=False),
)

relay_networks = Table(
    "relay_networks", metadata,
    Column("network", String, primary_key=True),
    Column("created", Float, nullable=False),
)

access_entries = Table(
    "access_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list", String, nullable=False),
    Column("scope", String, nullable=False),
    Column("pattern", String, nullable=False),
    Column("note", String, nullable=False, server_default=""),
    Column("created", Float, nullable=False),
    UniqueConstraint("list", "scope", "pattern"),
    sqlite_autoincrement=True,
)

bayes_models = Table(
    "bayes_models", metadata,
    Column("name", String, primary_key=True),
    Column("nspam", Integer, nullable=False, server_default="0"),
    Column("nham", Integer, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False, server_default="0"),
)

bayes_tokens = Table(
    "bayes_tokens", metadata,
    Column("model", String, primary_key=True),
    Column("token", String, primary_key=True),
    Column("spam", Integer, nullable=False),
    Column("ham", Integer, nullable=False),
    sqlite_with_rowid=False,
)

bayes_learned = Table(
    "bayes_learned", metadata,
    Column("model", String, primary_key=True),
    Column("blob_id", String, primary_key=True),
    Column("spam", Integer, nullable=False),
    Index("ix_bayes_learned_blob", "blob_id"),  # the rows of a swept blob go with it
    sqlite_with_rowid=False,
)

awl = Table(
    "awl", metadata,
    Column("sender", String, primary_key=True),
    Column("domain", String, primary_key=True),
    Column("clean", Integer, nullable=False, server_default="0"),
    Column("written", Integer, nullable=False, server_default="0"),
    Column("updated", Float, nullable=False),
    Index("ix_awl_updated", "updated"),
    sqlite_with_rowid=False,
)

dkim_keys = Table(
    "dkim_keys", metadata,
    Column("domain", String, primary_key=True),
    Column("selector", String, nullable=False),
    Column("private_key", LargeBinary, nullable=False),
    Column("public_key", String, nullable=False),
    Column("created", Float, nullable=False),
)

settings = Table(
    "settings", metadata,
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
)

fetch_accounts = Table(
    "fetch_accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("mode", String, nullable=False),
    Column("protocol", String, nullable=False),
    Column("host", String, nullable=False),
    Column("port", Integer, nullable=False),
    Column("security", String, nullable=False),
    Column("verify", Boolean, nullable=False),
    Column("username", String, nullable=False),
    Column("password", String, nullable=False),
    Column("interval", Float, nullable=False),
    Column("keep", Boolean, nullable=False),
    Column("last_run", Float, nullable=False, server_default="0"),
    Column("last_error", String, nullable=False, server_default=""),
    Column("created", Float, nullable=False),
    UniqueConstraint("host", "port", "username", "account_id"),
)

spam_settings = Table(
    "spam_settings", metadata,
    Column("scope", String, primary_key=True),  # a domain, or a user's address
    Column("tag_at", Float, nullable=True),
    Column("junk_at", Float, nullable=True),
    Column("reject_at", Float, nullable=True),
    Column("personal", Integer, nullable=True),
    Column("updated", Float, nullable=False),
    sqlite_with_rowid=False,
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True),
    Column("queue_id", String, nullable=False),
    Column("blob_id", String, nullable=False),  # holds one reference to the blob
    Column("size", BigInteger, nullable=False),
    Column("sender", String, nullable=False),
    Column("recipients", String, nullable=False),  # JSON list
    Column("kind", String, nullable=False),
    Column("reason", String, nullable=False),
    Column("score", Float, nullable=False),
    Column("findings", String, nullable=False),  # JSON list of [check, result, points, reason]
    Column("prefix", LargeBinary, nullable=False),
    Column("subject", String, nullable=False),
    Column("from_addr", String, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Column("signature", LargeBinary, nullable=False, server_default=text("x''")),  # DKIM-Signature for release
    Index("ix_quarantine_expires", "expires"),
)

fetch_seen = Table(
    "fetch_seen", metadata,
    Column("fetch_id", Integer, ForeignKey("fetch_accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("uid", String, primary_key=True),
    Column("created", Float, nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", LargeBinary, nullable=False, unique=True),  # SHA-256 of the secret
    Column("role", String, nullable=False),
    Column("subject", String, nullable=False),
    Column("domains", String, nullable=False),  # JSON list
    Column("label", String, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),  # 0: never
    Column("revoked", Integer, nullable=False, server_default=text("0")),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String, nullable=False),
    Column("role", String, nullable=False),
    Column("ip", String, nullable=False),
    Column("action", String, nullable=False),
    Column("target", String, nullable=False),
    Column("domain", String, nullable=False),
    Column("before", String, nullable=False),
    Column("after", String, nullable=False),
    Index("ix_audit_domain", "domain", "id"),
    Index("ix_audit_at", "at"),
    sqlite_autoincrement=True,
)
