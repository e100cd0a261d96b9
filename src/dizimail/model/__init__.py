"""Value types and the protocol-neutral error tree. No I/O here.

Front-ends translate :class:`MailError` into their own replies (SMTP code,
POP3 ``-ERR``, HTTP status); clients see the translated public text, logs
see ``detail``.
"""
