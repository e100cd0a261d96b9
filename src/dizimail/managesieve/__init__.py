"""ManageSieve (RFC 5804): users manage their Sieve scripts with the clients they have (Thunderbird's
sieve add-on, Roundcube's managesieve plugin, sieve-connect) on port 4190 (base + 4190). STARTTLS before
AUTHENTICATE; the same SASL exchange, lockout and account service as SMTP, IMAP and POP3; the scripts
through ``services.sieve.scripts``."""
