"""IMAP4rev1 front-end (RFC 3501 and extensions), on the sans-IO codec in ``codec.imap``.

``server.py`` builds the listeners (143 with STARTTLS, 993 implicit TLS); ``session.py`` is the
per-connection state machine (not authenticated → authenticated → selected → logout) and the
mailbox-level commands; ``fetch.py`` renders FETCH responses; ``search.py`` evaluates SEARCH keys.
Mailbox semantics (UIDs, flags, MODSEQ, expunge, notifications) live in ``services``.
"""
