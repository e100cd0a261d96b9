"""Bilingual (Simplified Chinese / English) texts for everything a user reads.

Protocol replies use the English text (SMTP and POP3 replies are ASCII);
notification mails, bounces and web pages use the recipient's language, or
both. Keys are stable names; every key exists in both languages (a unit test
checks it).
"""

from dizimail.i18n.catalog import CATALOG, translate

__all__ = ["CATALOG", "translate"]
