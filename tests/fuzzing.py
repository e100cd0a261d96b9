"""A seeded protocol fuzzer for SMTP, POP3, IMAP and ManageSieve sessions (used by tests/protocol/test_fuzz.py and
bench/fuzz_memory.py).

Each session starts with a valid prefix that brings it to a state (greeted, logged in, a mailbox
selected), then sends mutated commands drawn from each protocol's grammar: truncated, with hostile
bytes inserted, with tokens stretched to thousands of characters, with absurd numbers, joined,
or plain random bytes. All lines go out pipelined while a reader drains the replies; the client then
half-closes, so a server waiting for more (a literal, a DATA body, a SASL step) sees the end at once.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

SMTP = [
    b"EHLO client.test", b"HELO client.test", b"MAIL FROM:<a@outside.test>", b"MAIL FROM:<> SIZE=100 BODY=8BITMIME",
    b"MAIL FROM:<a@outside.test> RET=FULL ENVID=x+0D+0AX", b"MAIL FROM:<\xe6\xa3\x80@outside.test> SMTPUTF8",
    b"RCPT TO:<{user}>", b"RCPT TO:<{user}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb", b"RCPT TO:<postmaster>",
    b"RCPT TO:<x%y@example.test>", b"RCPT TO:<friend@remote.test>", b"DATA", b"Subject: fuzz", b".", b"BDAT 12",
    b"BDAT 0 LAST", b"BDAT 5 LAST", b"RSET", b"NOOP", b"VRFY x", b"HELP", b"STARTTLS", b"AUTH PLAIN",
    b"AUTH LOGIN", b"AUTH PLAIN AGFAAGI=", b"AUTH LOGIN dXNlcg==", b"*", b"=", b"QUIT",
    b"AUTH PLAIN\r\n{long}", b"AUTH LOGIN\r\n{long}", b"AUTH LOGIN\r\ndXNlcg==\r\n{long}", b"DATA\r\n{long}",
]
POP3 = [
    b"CAPA", b"USER {user}", b"PASS wrong", b"STAT", b"LIST", b"LIST 1", b"UIDL", b"UIDL 99999999999999999999",
    b"RETR 1", b"TOP 1 0", b"TOP 1 99999999999999", b"DELE 1", b"RSET", b"NOOP", b"STLS", b"AUTH", b"AUTH PLAIN",
    b"AUTH LOGIN", b"AUTH PLAIN AGFAAGI=", b"*", b"APOP x y", b"QUIT", b"AUTH PLAIN\r\n{long}",
    b"AUTH LOGIN\r\n{long}",
]
IMAP = [
    b"CAPABILITY", b"NOOP", b"CHECK", b"ID (\"name\" \"fuzz\")", b"ENABLE QRESYNC UTF8=ACCEPT IMAP4rev2",
    b"LOGIN {user} wrong", b"AUTHENTICATE PLAIN", b"AUTHENTICATE PLAIN AGFAAGI=", b"AUTHENTICATE LOGIN",
    b"SELECT INBOX", b"EXAMINE INBOX", b"SELECT INBOX (QRESYNC (1 1 1:5))", b"SELECT \"&ZeVnLIqe-\"",
    b"CREATE fuzz/\xe6\xa3\x80\xe4\xbf\xae", b"DELETE fuzz", b"RENAME fuzz fuzz2", b"SUBSCRIBE INBOX",
    b"LIST \"\" \"*\"", b"LIST \"\" \"%*%*%a\"", b"LIST (SUBSCRIBED RECURSIVEMATCH) \"\" * RETURN (STATUS (MESSAGES))",
    b"LSUB \"\" *", b"STATUS INBOX (MESSAGES UNSEEN SIZE HIGHESTMODSEQ)", b"NAMESPACE", b"GETQUOTAROOT INBOX",
    b"FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)", b"FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
    b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", b"FETCH 1 BINARY.PEEK[1]<0.10>", b"STORE 1 +FLAGS (\\Seen $x)",
    b"UID STORE 1:* FLAGS.SILENT (\\Deleted) (UNCHANGEDSINCE 5)", b"SEARCH ALL", b"SEARCH $", b"SEARCH ($)",
    b"UID SEARCH UID $", b"SEARCH RETURN (SAVE) ALL", b"SEARCH CHARSET UTF-8 TEXT \"\xe6\xa3\x80\"",
    b"SEARCH OR SUBJECT a NOT FROM b", b"SORT (DATE) UTF-8 $", b"SORT (REVERSE ARRIVAL SUBJECT) UTF-8 ALL",
    b"SORT RETURN (PARTIAL 1:10 COUNT) (DISPLAYFROM) UTF-8 ALL", b"THREAD REFERENCES UTF-8 ALL",
    b"THREAD ORDEREDSUBJECT UTF-8 ALL", b"COPY 1 Archive", b"MOVE 1 Junk", b"UID EXPUNGE 1", b"EXPUNGE",
    b"APPEND INBOX {11+}", b"APPEND INBOX (\\Seen) {99999999}", b"APPEND INBOX {5}", b"IDLE", b"DONE",
    b"NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge FlagChange)) (MAILBOXES x (MessageExpunge))",
    b"NOTIFY NONE", b"CANCELUPDATE \"a\"", b"UNSELECT", b"CLOSE", b"COMPRESS DEFLATE", b"STARTTLS", b"LOGOUT",
    b"AUTHENTICATE PLAIN\r\n{long}", b"AUTHENTICATE LOGIN\r\n{long}", b"COMPRESS DEFLATE\r\n{garbage}",
    b"IDLE\r\n{long}", b"APPEND INBOX {20}\r\n{long}", b"UID EXPUNGE $", b"UID FETCH $ (FLAGS) (CHANGEDSINCE 1 VANISHED)",
    b"FETCH $ FLAGS", b"UID STORE $ +FLAGS (\\Seen)", b"UID COPY $ Archive", b"UID MOVE $ Junk", b"COPY $ INBOX",
]
SIEVE = [
    b"CAPABILITY", b"NOOP", b'NOOP "tag"', b"STARTTLS", b'AUTHENTICATE "PLAIN"', b'AUTHENTICATE "PLAIN" "AGFAAGI="',
    b'AUTHENTICATE "LOGIN"', b'"*"', b'"dXNlcg=="', b"LISTSCRIPTS", b'HAVESPACE "s" 100', b'HAVESPACE "s" 99999999999',
    b'PUTSCRIPT "s" {14+}\r\nkeep; discard;', b'PUTSCRIPT "s" "require \\"fileinto\\"; fileinto \\"x\\";"',
    b'PUTSCRIPT "\xe8\xa7\x84\xe5\x88\x99" {5+}\r\nkeep;', b"CHECKSCRIPT {9+}\r\nif true {",
    b'CHECKSCRIPT "if header :matches \\"subject\\" \\"*a*a*a*b\\" { stop; }"', b'SETACTIVE "s"', b'SETACTIVE ""',
    b'GETSCRIPT "s"', b'DELETESCRIPT "s"', b'RENAMESCRIPT "s" "t"', b"UNAUTHENTICATE", b'PUTSCRIPT "big" "{long}"',
    b'CHECKSCRIPT "{long}"', b'AUTHENTICATE "PLAIN"\r\n{long}', b'PUTSCRIPT "s" {70000+}',
    b"CHECKSCRIPT {20+}\r\n{garbage}", b"LOGOUT",
]
_INSERTS = [b"\x00", b"\r", b"\n", b"\xff", b"<", b">", b":", b" ", b"{", b"}", b"{5}", b"{3+}", b"\"", b"(",
            b")", b"[", b"]", b"\\", b"%", b"*", b"$", b"~{2}", b"\xe6\xa3\x80", b"=?utf-8?b?", b"+0D+0A", b"\t"]
_LONG = [b"A", b"(", b"[", b"*", b"%", b"9", b"a\"", b"[a]"]
_NUMBER = re.compile(rb"\d+")


@dataclass
class Scenario:
    """One kind of session: its port and the lines that bring it to a state before the fuzzing."""

    name: str
    port: int
    prefix: list[bytes]
    seeds: list[bytes]
    tagged: bool = False


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One line (or a command with its continuation lines: ``{long}`` is a line far over any limit,
    ``{garbage}`` random bytes), mutated."""
    line = rng.choice(seeds)
    if b"{long}" in line or b"{garbage}" in line:
        line = line.replace(b"{long}", rng.choice(_LONG) * rng.choice((5000, 20000)))
        return line.replace(b"{garbage}", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
    roll = rng.random()
    if roll < 0.3:
        return line
    if roll < 0.4:
        return line[: rng.randrange(len(line) + 1)]
    if roll < 0.6:
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(line) + 1)
            line = line[:at] + rng.choice(_INSERTS) + line[at:]
        return line
    if roll < 0.7:
        at = rng.randrange(len(line) + 1)
        return line[:at] + rng.choice(_LONG) * rng.choice((100, 1000, 5000, 20000)) + line[at:]
    if roll < 0.8:
        big = rng.choice((b"0", b"4294967296", b"99999999999999999999999", b"-1", b"18446744073709551617"))
        return _NUMBER.sub(lambda _m: big, line, count=1)
    if roll < 0.9:
        return line + b" " + rng.choice(seeds)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(300)))


def session_bytes(rng: random.Random, scenario: Scenario, lines: int) -> bytes:
    out = list(scenario.prefix)
    for n in range(lines):
        line = mutate(rng, scenario.seeds)
        if scenario.tagged and rng.random() < 0.9:
            line = f"f{n} ".encode() + line
        out.append(line)
    ends = [b"\r\n"] * 18 + [b"\n", b"\r"]
    return b"".join(line + rng.choice(ends) for line in out)


async def run_session(port: int, data: bytes, timeout: float = 20.0) -> int:
    """Send ``data`` while reading replies; half-close; read to the end. Returns the reply bytes seen."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0
    received = 0

    async def drain() -> None:
        nonlocal received
        while chunk := await reader.read(65536):
            received += len(chunk)

    reading = asyncio.ensure_future(drain())
    try:
        for start in range(0, len(data), 16384):
            writer.write(data[start:start + 16384])
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        await asyncio.wait_for(reading, timeout)
    except (OSError, TimeoutError):  # the server hung up first (too many errors, LOGOUT ...)
        pass
    finally:
        reading.cancel()
        writer.close()
    return received


async def fuzz(scenarios: list[Scenario], *, seed: int, sessions: int, lines: int, parallel: int = 8,
               progress: Callable[[int], None] | None = None) -> int:
    """Run ``sessions`` sessions of each scenario, ``parallel`` at a time; returns the lines sent."""
    rng = random.Random(seed)
    plan = [(s, random.Random(rng.random())) for _ in range(sessions) for s in scenarios]
    gate = asyncio.Semaphore(parallel)
    sent = 0

    async def one(scenario: Scenario, session_rng: random.Random) -> None:
        nonlocal sent
        async with gate:
            await run_session(scenario.port, session_bytes(session_rng, scenario, lines))
            sent += lines
            if progress is not None:
                progress(sent)

    await asyncio.gather(*(one(s, r) for s, r in plan))
    return sent


def scenarios(ports: dict[str, int], user: str, password: str) -> list[Scenario]:
    """Before and after login on each protocol (plaintext login must be allowed for the client's address)."""
    import base64

    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    u = user.encode()

    def seeds(lines: list[bytes]) -> list[bytes]:
        return [line.replace(b"{user}", u) for line in lines]
    return [
        Scenario("smtp-mx", ports["smtp"], [], seeds(SMTP)),
        Scenario("smtp-auth", ports["submission"], [b"EHLO fuzz.test", f"AUTH PLAIN {plain}".encode()], seeds(SMTP)),
        Scenario("pop3", ports["pop3"], [], seeds(POP3)),
        Scenario("pop3-auth", ports["pop3"], [b"USER " + u, b"PASS " + password.encode()], seeds(POP3)),
        Scenario("imap", ports["imap"], [], seeds(IMAP), tagged=True),
        Scenario("imap-auth", ports["imap"], [f'l LOGIN "{user}" "{password}"'.encode(), b"s SELECT INBOX"],
                 seeds(IMAP), tagged=True),
        Scenario("managesieve", ports["managesieve"], [], SIEVE),
        Scenario("managesieve-auth", ports["managesieve"], [f'AUTHENTICATE "PLAIN" "{plain}"'.encode()], SIEVE),
        Scenario("imap-qresync", ports["imap"], [f'l LOGIN "{user}" "{password}"'.encode(), b"e ENABLE QRESYNC",
                                                 b"s SELECT INBOX"], seeds(IMAP), tagged=True),
    ]
