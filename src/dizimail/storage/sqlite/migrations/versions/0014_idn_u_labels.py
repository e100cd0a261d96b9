"""Internationalised domain names kept in one spelling, U-labels (util.idn): a local domain, route, DKIM
key or spam setting stored in A-labels (``xn--tfr181f.cn``, as an operator may have typed it) becomes
``电力.cn``, the form every look-up now asks for. A row whose other spelling is also stored is left as it
is (the look-up finds that other row).

Revision ID: 0014
Revises: 0013
"""

from alembic import op
from sqlalchemy import text

from dizimail.util.idn import unicode_address, unicode_domain

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_KEYS = (("domains", "name"), ("routes", "domain"), ("dkim_keys", "domain"), ("spam_settings", "scope"))


def _respelt(value: str) -> str:
    if "@" in value:
        return unicode_address(value)
    try:
        return unicode_domain(value)
    except ValueError:
        return value


def upgrade() -> None:
    conn = op.get_bind()
    for table, column in _KEYS:
        rows = conn.execute(text(f"SELECT {column} FROM {table} WHERE {column} LIKE '%xn--%'")).scalars().all()
        for old in rows:
            new = _respelt(old)
            taken = conn.execute(text(f"SELECT 1 FROM {table} WHERE {column} = :new"), {"new": new}).first()
            if new != old and taken is None:
                conn.execute(text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old"), {"new": new, "old": old})


def downgrade() -> None:
    pass  # both spellings were always valid keys: nothing to undo
