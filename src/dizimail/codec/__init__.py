"""Sans-IO wire codecs: hostile bytes in, typed objects (or a protocol error) out.

Every module here is pure: no sockets, no asyncio, no files, no clocks. A
front-end session reads bytes, hands one command line (without its CRLF) or a
chunk of message data to a codec, and acts on the typed result. Keeping the
parsing here means each protocol is tested with byte literals alone and the
sessions hold only state-machine logic.

- :mod:`dizimail.codec.smtp`: RFC 5321 command parser (with the ESMTP
  parameters of RFC 1870, 3030, 3461, 4954, 6152, 6531) and the streaming
  DATA decoder (RFC 5321 §4.5.2 transparency, SMTP-smuggling safe).
- :mod:`dizimail.codec.pop3`: RFC 1939 / 2449 / 2595 / 5034 command parser,
  the streaming dot-stuffer for multi-line replies and TOP.
- :mod:`dizimail.codec.sasl`: RFC 4616 PLAIN and the LOGIN mechanism's
  base64 steps.
"""
