"""The HTTPS side (issue #11): the REST API under /api/v1 (and, later, the admin pages and webmail), a
front-end over the same services as SMTP, IMAP, POP3 and the command line."""
