"""Our network clients: outbound SMTP for the queue runner (``smtp``) and the POP3/IMAP clients of the
fetcher (``fetch``).

Each implements an interface of ``dizimail.interfaces`` (``outbound.Outbound``, ``remote.MailboxClient``)
that ``app`` hands to a service: services never open a socket, and these clients know no service. They
sit beside the front-ends in the layering (``net`` below them gives the buffered connection).
"""
