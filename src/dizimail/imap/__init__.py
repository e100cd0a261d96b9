"""IMAP4rev1 front-end (RFC 3501 and extensions), on the sans-IO codec in ``codec.imap``.

``server.py`` builds the listeners (143 with STARTTLS, 993 implicit TLS); ``session.py`` is the
per-connection state machine (not authenticated → authenticated → selected → logout) and the
mailbox-level commands (``mailboxes.py``, ``searching.py``); ``fetch.py`` renders FETCH responses;
``search.py`` evaluates SEARCH keys and ``sort.py`` orders and threads; ``contexts.py`` keeps
SEARCH/SORT results up to date (RFC 5267) and ``notifications.py`` sends NOTIFY events (RFC 5465).
Mailbox semantics (UIDs, flags, MODSEQ, expunge, notifications) live in ``services``.
"""
