"""Connection plumbing shared by the protocol front-ends.

:class:`Connection` wraps an asyncio stream pair with our own buffer so that a
session can read lines with a hard length limit, read raw chunks for message
data, push bytes back (pipelining after end-of-data), and upgrade to TLS with
the buffer discarded (no command injection across STARTTLS, CVE-2011-0411
class). :class:`Listener` accepts connections with per-IP and global limits
and runs one session coroutine per connection, isolated from the others.
"""
