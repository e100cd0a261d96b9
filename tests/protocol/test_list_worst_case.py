"""A mailing list of 5,000 members under a flood never stalls the node (issue #12): anyone may post to an
``anyone`` list, and anyone may ask to subscribe; while two clients post as fast as the node takes them and
a third sends subscription requests, new SMTP and IMAP clients are still greeted within 100 ms (member
resolution, the copies' rows and the commit run off the event loop or in bounded steps)."""

from __future__ import annotations

import smtplib
import time
import uuid

import pytest

from conftest import DOMAIN, ServerThread, write_config
from helpers import busy, greeting_delays
from processes import serving

MEMBERS = 5000
LIST = f"all@{DOMAIN}"
done = {"posts": 0, "requests": 0}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("list-worst")
    config_file, ports = write_config(tmp)
    setup = ServerThread(config_file, ports)
    setup.start()
    try:
        async def seed(s):
            for i in range(MEMBERS):
                await s.accounts.add_user(f"m{i:04d}@{DOMAIN}", "list-worst-pw", "", 0)
            await s.lists.create(LIST, policy="anyone", members=[f"@{DOMAIN}"])
        setup.call(seed)
    finally:
        setup.stop()
    with serving(config_file, ports, tmp / "node.log") as served:
        yield served


def _post(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        smtp.sendmail("flood@outside.test", [LIST], (f"From: flood@outside.test\r\nTo: {LIST}\r\n"
                                                     f"Subject: flood {uuid.uuid4().hex}\r\n\r\n{'x' * 3000}\r\n").encode())
    done["posts"] += 1


def _subscribe(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        for _ in range(20):
            smtp.sendmail(f"{uuid.uuid4().hex[:10]}@outside.test", ["all+subscribe@" + DOMAIN], b"Subject: hi\r\n\r\n")
            done["requests"] += 1


def test_greetings_stay_fast_while_a_5000_member_list_is_flooded(node):
    ports = node.ports
    started = time.monotonic()
    with busy(lambda: _post(ports["smtp"]), lambda: _post(ports["smtp"]), lambda: _subscribe(ports["smtp"])):
        smtp = greeting_delays(ports["smtp"], count=20)
        imap = greeting_delays(ports["imap"], count=10, greeting=b"* OK")
    assert time.monotonic() - started > 2
    assert done["posts"] >= 4 and done["requests"] >= 20, done  # the flood did run
    print(f"\nflood: {done}")
    slow = [round(d * 1000, 1) for d in smtp + imap if d > 0.1]
    assert not slow, f"greetings over 100 ms while the list was flooded: {slow}"
