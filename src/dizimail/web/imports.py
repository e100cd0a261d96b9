"""A CSV import of users into one domain (issue #11), the same for the REST API and the admin pages, and
through the same code as ``dizimail user import`` (services.usercsv, services.admin)."""

from __future__ import annotations

from collections.abc import Callable

from dizimail.i18n.catalog import translate
from dizimail.model.audit import Actor
from dizimail.model.errors import InvalidInput
from dizimail.services.accounts import normalize_address
from dizimail.services.admin import AdminActions
from dizimail.services.usercsv import parse_user_csv, problem_text

IMPORT_BATCH = 250  # users hashed and stored at a time: logins' hashing is not kept waiting long


def _domain_or_none(address: str) -> str | None:
    try:
        return normalize_address(address).rpartition("@")[2]
    except InvalidInput:
        return None


async def import_csv(admin: AdminActions, actor: Actor, domain: str, text: str, lang: str,
                     progress: Callable[[int, int], None] | None = None) -> tuple[int, list[tuple[int, str]]]:
    """Users from CSV text into ``domain``: how many were imported, and each refused line with its reason
    in ``lang`` (rows for another domain included). ``progress(done, total)`` after each batch."""
    rows, problems = parse_user_csv(text)
    rejected = [(p[0], problem_text(p, lang)) for p in problems]
    mine = []
    for lineno, row in rows:
        if (found := _domain_or_none(row[0])) is not None and found != domain:  # a bad address: reported below
            rejected.append((lineno, f"{row[0]}: {translate('not_in_domain', lang)}"))
        else:
            mine.append((lineno, row))
    imported = 0
    if progress is not None:
        progress(0, len(mine))
    for start in range(0, len(mine), IMPORT_BATCH):
        batch = mine[start:start + IMPORT_BATCH]
        results = await admin.import_users(actor, [r for _, r in batch])
        for (lineno, row), error in zip(batch, results, strict=True):
            if error is None:
                imported += 1
            else:
                rejected.append((lineno, f"{row[0]}: {translate(error, lang)}"))
        if progress is not None:
            progress(start + len(batch), len(mine))
    return imported, sorted(rejected)
