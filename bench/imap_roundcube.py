"""A 20,000-message INBOX read the way Roundcube reads it, dizimail against Dovecot, side by side.

    bench/dizimail_up.sh /tmp/dz 13000                      # USERS=10 is enough
    USERS=10 ../shared/reference/up.sh /tmp/ref 12000       # as root
    .venv/bin/python bench/imap_roundcube.py --ref /tmp/ref/target.env --dz /tmp/dz/target.env \
        [--messages 20000] [--rounds 5] [--user 1] [--out bench/results/DIR/roundcube.json]

Stdlib only. Both servers get the same messages (generated from a fixed seed) into user N's INBOX by
pipelined APPEND with LITERAL+ (skipped when the INBOX already holds them; ``--reload`` empties it
first). The messages vary like a real mailbox: plain and RFC 2047 encoded Chinese subjects (UTF-8 and
GB2312, B and Q), a tenth multipart/alternative with an HTML part, some base64 bodies, a few
attachments, replies with References, Date headers in several zones and not in arrival order. One
rare word sits in 1 % of the bodies, one common word in most.

Then each command is timed over a plain socket (send → tagged reply read, literals included), the
servers alternating command by command and round by round (the one going first swaps each round), after
one untimed warm-up round: SELECT INBOX (the first after the APPEND of the round before, and again), UID
SEARCH ALL, UID SEARCH HEADER SUBJECT (a plain word and a Chinese word that only encoded words carry), UID
SEARCH BODY (rare and common word), UID SORT (REVERSE DATE) UTF-8 ALL (also right after an APPEND, when
nothing kept about the order holds), a 50-message page of UID FETCH (UID RFC822.SIZE FLAGS
BODY.PEEK[HEADER.FIELDS (DATE FROM TO SUBJECT CONTENT-TYPE)]) (the first page of that sort, again each
round; and a page of it that neither server was asked for before, a different one each round), STATUS,
and NOOP for the cost of a command that does nothing (the floor under the others). Prints the medians,
the ratio dizimail / Dovecot and whether both servers gave the same answer (UIDs are assigned in APPEND
order on both, so SEARCH and SORT results must be equal).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import shlex
import socket
import statistics
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

RARE = "zanzibarite"  # in 1 % of the bodies
COMMON = "schedule"  # in most bodies
PLAIN_SUBJECT_WORD = "Invoice"
CHINESE_SUBJECT_WORD = "发票"  # "invoice": only in encoded-word subjects
WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her she there been one all we their has would when if so no what out up said about into "
         "than them can only other new some could time these two may then first any my now such like our over "
         "man me even most made after also did many before must through back years where much your way well "
         "down should because each just those people how too little state good very make world still own see "
         "men work long get here between both life being under never day same another know while last might us "
         "great old year off come since against go came right used take three budget review quarter customer "
         "report shipment contract supplier warehouse plant turbine boiler voltage meter reading").split()
CHINESE = ("电厂 发电量 正常 运行 日报 会议 通知 设备 检修 安全 生产 计划 采购 合同 财务 报销 审批 部门 员工 培训 "
           "系统 升级 维护 客户 项目 进度 质量 检查 总结 报告 年度 预算 供应商 仓库 锅炉 汽轮机 电压 电表 读数").split()
SENDERS = [("Alice Chen", "alice.chen"), ("Bob Smith", "bob"), ("李明", "liming"), ("王芳", "wangfang"),
           ("Carol White", "carol.w"), ("David Zhang", "dzhang"), ("张伟", "zhangwei"), ("Eve Martin", "eve"),
           ("Frank Liu", "frank.liu"), ("刘洋", "liuyang"), ("Grace Wu", "gwu"), ("Henry Zhao", "hzhao"),
           ("陈静", "chenjing"), ("Ivy Sun", "ivy"), ("Jack Ma", "jma"), ("杨帆", "yangfan")]
DOMAINS = ["partner.example", "supplier.example", "plant.example.cn", "mail.example.org", "corp.example.com"]
ZONES = [timezone(timedelta(hours=h)) for h in (8, 8, 8, 0, -5, 1, 9, -8)]


def _encoded(text: str, rng: random.Random) -> str:
    """An RFC 2047 encoded subject, as Chinese mailers write them (UTF-8 or GB2312, B or Q)."""
    charset = rng.choice(["utf-8", "utf-8", "gb2312"])
    data = text.encode(charset)
    if rng.random() < 0.8:  # (email.header.Header would label GB2312 "eucgb2312_cn", which no MUA writes)
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    return f"=?{charset}?Q?" + "".join(f"={b:02X}" for b in data) + "?="


def _body_words(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def make_message(n: int, rng: random.Random, ids: list[str]) -> bytes:
    """Message ``n`` (1-based) of the bench mailbox; ``ids`` are the Message-IDs so far (for replies)."""
    name, local = rng.choice(SENDERS)
    domain = rng.choice(DOMAINS)
    sender = f"{Header(name, 'utf-8').encode()} <{local}@{domain}>" if not name.isascii() else f"{name} <{local}@{domain}>"
    when = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=n * 1500 + rng.randint(-86400 * 3, 86400 * 3))
    date = format_datetime(when.astimezone(rng.choice(ZONES)))
    roll = rng.random()
    chinese = False
    if roll < 0.05:
        subject = f"{PLAIN_SUBJECT_WORD} {rng.randint(1000, 99999)} for {when:%B}"
    elif roll < 0.10:
        subject, chinese = _encoded(f"{CHINESE_SUBJECT_WORD}{rng.randint(1, 999)}号 {rng.choice(CHINESE)}", rng), True
    elif roll < 0.35:
        subject, chinese = _encoded("".join(rng.sample(CHINESE, 3)) + f" {rng.randint(1, 99)}", rng), True
    else:
        subject = " ".join(_body_words(rng, rng.randint(3, 8))).capitalize()
    headers = [f"From: {sender}", "To: User <user@example.test>"]
    if rng.random() < 0.2:
        headers.append(f"Cc: {rng.choice(SENDERS)[1]}@{rng.choice(DOMAINS)}")
    msgid = f"<{n}.{rng.getrandbits(40):x}@{domain}>"
    if ids and rng.random() < 0.3:
        parent = rng.choice(ids[-200:])
        subject = rng.choice(["Re: ", "RE: ", "Fwd: ", "Re: [list] "]) + subject
        headers.append(f"In-Reply-To: {parent}")
        headers.append(f"References: {parent}")
    ids.append(msgid)
    headers += [f"Subject: {subject}", f"Date: {date}", f"Message-ID: {msgid}", "MIME-Version: 1.0"]
    words = _body_words(rng, rng.randint(150, 900))
    if rng.random() < 0.85:
        words.insert(rng.randrange(len(words)), COMMON)
    if n % 100 == 37:
        words.insert(rng.randrange(len(words)), RARE)
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    if chinese:
        lines.insert(0, "".join(rng.sample(CHINESE, 6)) + "。")
    text = "\r\n".join(lines) + "\r\n"
    charset = "gb2312" if chinese and rng.random() < 0.5 else "utf-8"
    kind = rng.random()
    if kind < 0.1:
        html = "<html><body><p>" + text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
        boundary = f"=_b{n}"
        body = (f"--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\n"
                f"Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + text.encode(charset) + (
            f"--{boundary}\r\nContent-Type: text/html; charset={charset}\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + html.encode(charset) + f"--{boundary}--\r\n".encode()
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    elif kind < 0.13:
        boundary = f"=_m{n}"
        attachment = base64.encodebytes(rng.randbytes(rng.randint(5000, 30000))).replace(b"\n", b"\r\n")
        body = (f"--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\n\r\n").encode() + text.encode(charset) + (
            f"--{boundary}\r\nContent-Type: application/pdf; name=report{n}.pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=report{n}.pdf\r\n\r\n"
            ).encode() + attachment + f"--{boundary}--\r\n".encode()
        headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    elif kind < 0.25:
        body = base64.encodebytes(text.encode(charset)).replace(b"\n", b"\r\n")
        headers += [f"Content-Type: text/plain; charset={charset}", "Content-Transfer-Encoding: base64"]
    else:
        body = text.encode(charset)
        headers += [f"Content-Type: text/plain; charset={charset}", "Content-Transfer-Encoding: 8bit"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def messages(count: int, seed: int = 9) -> list[bytes]:
    rng = random.Random(seed)
    ids: list[str] = []
    return [make_message(n, rng, ids) for n in range(1, count + 1)]


# --- a minimal IMAP client -------------------------------------------------------------------


class Imap:
    """One plain connection; ``command`` returns (untagged lines, tagged line, seconds)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=600)
        self.file = self.sock.makefile("rb")
        self.count = 0
        self.file.readline()

    def read_response(self) -> bytes:
        """One response line with any literals it carries."""
        line = self.file.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        while (m := re.search(rb"\{(\d+)\}\r\n$", line)) is not None:
            line += self.file.read(int(m[1]))
            line += self.file.readline()
        return line

    def command(self, text: bytes | str) -> tuple[list[bytes], bytes, float]:
        self.count += 1
        tag = b"b%d" % self.count
        data = text.encode() if isinstance(text, str) else text
        started = time.perf_counter()
        self.sock.sendall(tag + b" " + data + b"\r\n")
        lines = []
        while not (line := self.read_response()).startswith(tag + b" "):
            lines.append(line)
        elapsed = time.perf_counter() - started
        if not line.startswith(tag + b" OK"):
            raise RuntimeError(f"{data[:80]!r}: {line!r}")
        return lines, line, elapsed

    def append_all(self, items: list[bytes]) -> None:
        """Pipelined APPEND with non-synchronizing literals (RFC 7888); a thread writes, we read."""
        def write() -> None:
            for i, data in enumerate(items):
                self.sock.sendall(b"a%d APPEND INBOX {%d+}\r\n" % (i, len(data)) + data + b"\r\n")
        writer = threading.Thread(target=write)
        writer.start()
        done = 0
        while done < len(items):
            line = self.read_response()
            if line.startswith(b"a"):
                if b" OK" not in line:
                    raise RuntimeError(line)
                done += 1
                if done % 2000 == 0:
                    print(f"  appended {done}", flush=True)
        writer.join()

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = " ".join(shlex.split(value)) if value else ""
    return env


def login(env: dict[str, str], n: int) -> Imap:
    user = env["USER_FMT"].format(n=n)
    password = env["PASS_FMT"].format(local=user.split("@")[0])
    conn = Imap(env.get("HOST", "127.0.0.1"), int(env["IMAP_PORT"]))
    conn.command(f'LOGIN "{user}" "{password}"')
    return conn


def load(conn: Imap, items: list[bytes], reload: bool, name: str) -> None:
    lines, _, _ = conn.command("SELECT INBOX")
    exists = next(int(line.split()[1]) for line in lines if line.endswith(b" EXISTS\r\n"))
    if exists == len(items) and not reload:
        print(f"{name}: INBOX already holds {exists} messages")
        return
    if exists:
        conn.command("STORE 1:* +FLAGS.SILENT (\\Deleted)")
        conn.command("EXPUNGE")
    started = time.monotonic()
    conn.append_all(items)
    print(f"{name}: appended {len(items)} messages in {time.monotonic() - started:.1f} s", flush=True)


# --- the workload ----------------------------------------------------------------------------

FETCH_ITEMS = "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (DATE FROM TO SUBJECT CONTENT-TYPE)])"
# Without RECENT: for the session that selected the mailbox, Dovecot counts the messages that are
# \Recent in that session, dizimail those no session has claimed yet (RFC 3501 leaves it open).
STATUS_ITEMS = "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"


NEXT_PAGE = "UID FETCH <next page, not fetched before>"
AFTER_NEW = "UID SORT (REVERSE DATE) UTF-8 ALL <after an APPEND>"
FLOOR = "NOOP <what any command costs>"
# Appended (untimed) before AFTER_NEW: nothing a server kept about the mailbox's order still holds.
# Flagged \Deleted and expunged at the end, so the next run finds the mailbox as loaded.
EXTRA = (b"From: late@example.test\r\nSubject: one more\r\nDate: Wed, 1 Jan 2020 00:00:00 +0000\r\n"
         b"Message-ID: <late@example.test>\r\n\r\narrives between two sorts\r\n")


def commands(page: str, next_page: str) -> list[tuple[str, bytes]]:
    """The measured commands; ``page`` is the first page of the message list (the same at every
    round), ``next_page`` a page neither server was asked for before (a new one each round)."""
    chinese = CHINESE_SUBJECT_WORD.encode()
    return [
        ("SELECT INBOX <after an APPEND>", b"SELECT INBOX"),
        ("SELECT INBOX <again, unchanged>", b"SELECT INBOX"),
        ("UID SEARCH ALL", b"UID SEARCH ALL"),
        (f"UID SEARCH HEADER SUBJECT {PLAIN_SUBJECT_WORD}", f"UID SEARCH HEADER SUBJECT {PLAIN_SUBJECT_WORD}".encode()),
        ("UID SEARCH HEADER SUBJECT <encoded-word Chinese>",
         b"UID SEARCH CHARSET UTF-8 HEADER SUBJECT {%d+}\r\n" % len(chinese) + chinese),
        ("UID SEARCH BODY <rare word, 1 %>", f"UID SEARCH BODY {RARE}".encode()),
        ("UID SEARCH BODY <common word>", f"UID SEARCH BODY {COMMON}".encode()),
        ("UID SORT (REVERSE DATE) UTF-8 ALL", b"UID SORT (REVERSE DATE) UTF-8 ALL"),
        (AFTER_NEW, b"UID SORT (REVERSE DATE) UTF-8 ALL"),
        ("UID FETCH <50-message page>", f"UID FETCH {page} {FETCH_ITEMS}".encode()),
        (NEXT_PAGE, f"UID FETCH {next_page} {FETCH_ITEMS}".encode()),
        ("STATUS INBOX", f"STATUS INBOX {STATUS_ITEMS}".encode()),
        (FLOOR, b"NOOP"),
    ]


def answer(lines: list[bytes]) -> str:
    """What a result says, for comparing the two servers (numbers of SEARCH/SORT, the count of
    FETCH responses, EXISTS of SELECT)."""
    for line in lines:
        for word in (b"* SEARCH", b"* SORT"):
            if line.startswith(word):
                numbers = line[len(word):].split()
                return f"{len(numbers)} results, crc {zlib.crc32(b' '.join(numbers)):08x}"
    fetches = sum(1 for line in lines if b" FETCH " in line)
    if fetches:
        return f"{fetches} FETCH"
    for line in lines:
        if line.endswith(b" EXISTS\r\n"):
            return line.decode().strip()
        if line.startswith(b"* STATUS"):
            return re.sub(r"\s*UIDVALIDITY \d+", "", line.decode().strip()).replace('"', "")
    return ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, required=True, help="target.env of the reference (Dovecot)")
    p.add_argument("--dz", type=Path, required=True, help="target.env of dizimail")
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--user", type=int, default=1)
    p.add_argument("--reload", action="store_true", help="empty the INBOXes and load them again")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    a = p.parse_args()
    targets = {"dovecot": read_env(a.ref), "dizimail": read_env(a.dz)}
    items = messages(a.messages)
    print(f"{len(items)} messages, {sum(map(len, items)) / 1e6:.1f} MB")
    conns = {}
    for name, env in targets.items():
        conns[name] = login(env, a.user)
        load(conns[name], items, a.reload, name)
    orders = {}
    for name, conn in conns.items():
        conn.command("SELECT INBOX")
        lines, _, _ = conn.command("UID SORT (REVERSE DATE) UTF-8 ALL")
        orders[name] = next(x for x in lines if x.startswith(b"* SORT")).decode().split()[2:]

    def page(name: str, n: int) -> str:
        return ",".join(orders[name][50 * n:50 * (n + 1)])
    # "next page" pages: drawn anew for every run (neither server has seen them: Dovecot keeps what it
    # fetched in its index files across runs, dizimail only in memory), the same for both servers
    fresh = random.Random().sample(range(2, len(orders["dizimail"]) // 50), a.rounds + 1)
    labels = [label for label, _ in commands("", "")]
    times: dict[str, dict[str, list[float]]] = {name: {label: [] for label in labels} for name in conns}
    answers: dict[str, dict[str, str]] = {name: {} for name in conns}
    order = list(conns)
    for round_ in range(a.rounds + 1):  # round 0 warms up (Dovecot's caches, dizimail's lazy indexing)
        work = {name: commands(page(name, 0), page(name, fresh[round_])) for name in conns}
        for i, label in enumerate(labels):
            for name in order:
                if label == AFTER_NEW:
                    conns[name].command(b"APPEND INBOX (\\Deleted) {%d+}\r\n" % len(EXTRA) + EXTRA)
                elif label == FLOOR:  # the NOOP before it takes whatever a server does after a change
                    conns[name].command(b"NOOP")
                lines, _, elapsed = conns[name].command(work[name][i][1])
                if round_:
                    times[name][label].append(elapsed * 1000)
                else:
                    answers[name][label] = answer(lines)
        if round_:
            print(f"round {round_} done", flush=True)
        order.reverse()
    rows = []
    print(f"\n{'command':<50} {'Dovecot ms':>11} {'dizimail ms':>12} {'ratio':>7}  same answer")
    for label in labels:
        ref, dz = statistics.median(times["dovecot"][label]), statistics.median(times["dizimail"][label])
        same = answers["dovecot"][label] == answers["dizimail"][label]
        rows.append({"command": label, "dovecot_ms": round(ref, 2), "dizimail_ms": round(dz, 2),
                     "ratio": round(dz / ref, 2), "same_answer": same, "dovecot_answer": answers["dovecot"][label],
                     "dizimail_answer": answers["dizimail"][label], "dovecot_all": times["dovecot"][label],
                     "dizimail_all": times["dizimail"][label]})
        print(f"{label:<50} {ref:>11.2f} {dz:>12.2f} {dz / ref:>6.2f}x  "
              f"{'yes' if same else 'NO: ' + answers['dovecot'][label] + ' / ' + answers['dizimail'][label]}")
    for conn in conns.values():
        conn.command("EXPUNGE")  # the messages appended for AFTER_NEW
        conn.close()
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"messages": a.messages, "rounds": a.rounds, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
