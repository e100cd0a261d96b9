"""SMTP front-end: MX (port 25), submission (587, STARTTLS) and SMTPS (465, implicit TLS).

``server.py`` builds the listeners; ``session.py`` is the per-connection state
machine: read a line → limits → parse (codec.smtp) → dispatch through a table
→ reply. Messages stream to disk through ``services.ingest`` and the 250 goes
out only after the commit is durable.
"""
