"""POP3 front-end (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034).

The maildrop semantics (snapshot, stable UIDL, deletion at QUIT) live in
``services.mailstore``; this package only speaks the wire protocol.
"""
