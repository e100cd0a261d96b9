"""The policy layer: every accept/reject decision about a message, in one place (DESIGN.md §2, §5).

A decision is made by small named checks (``checks`` in config, run in the order the table gives),
each with hooks for the stages of a transaction (connect, helo, mail, rcpt, data) that return a
:class:`~.verdict.Verdict` — accept, tempfail or reject, the reply, and which check decided and
why. The SMTP session asks and speaks the answer; submission from webmail, the fetcher and the
importers ask the same engine; storage records outcomes and never decides (the quota rule, for
instance, is :mod:`.quota`'s: storage only honours the limit it is handed, atomically).

The anti-spam layers of DESIGN.md §5 are further checks in the same table.
Importing this package imports nothing (``services.ingest`` uses :mod:`.quota` while
:mod:`.engine` uses ``services.ingest``).
"""
