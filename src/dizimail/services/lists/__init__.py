"""Mailing lists (邮件列表, issue #12; docs/lists.md is the reference).

A list is an address in a local domain. Its addresses, all ``LIST+ROLE@domain`` beside the list's own,
are resolved by the router (``Kind.LIST``), judged at RCPT by the ``list-post`` check (who may post,
valid tokens), and handled at ingest by :class:`~dizimail.services.lists.receive.ListReceiver` before
the 250: a post becomes ONE new message (the post with the list's header fields) for every member,
which enters through ``Ingest.commit`` like any message (one blob, a row per local member, a queue row
per remote member with its VERP return path); a post waiting for a moderator is a quarantine entry of
kind ``list``; commands change members.

- :mod:`.addresses`: the command addresses, their MACs, the header fields of a post (RFC 2369/2919/8058);
- :mod:`.manage`: the lists as the CLI, the REST API and the admin pages change them, the moderation queue;
- :mod:`.receive`: what mail to a list's addresses does; :mod:`.mails`: the bilingual mails lists send.
"""
