"""Virus scanning with a real clamd (issue #10) and signatures generated here: infected mail is refused at
DATA whoever sends it, archives are looked into, and while clamd is down mail is tempfailed, never taken
unscanned; the client's retry then delivers it once."""

from __future__ import annotations

import base64
import io
import tarfile
import zipfile
from collections.abc import Iterator

import pytest

from conftest import ServerThread, start_server
from helpers import fetch_all, send_data, submit
from peers import EICAR, MARKER, ClamdPeer, free_port


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdPeer]:
    with ClamdPeer(tmp_path_factory.mktemp("clamd"), free_port()) as peer:
        yield peer


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, clamd: ClamdPeer) -> Iterator[ServerThread]:
    srv = start_server(tmp_path_factory.mktemp("av"), extra=f'\n[antivirus]\nclamd = "{clamd.address}"\ntimeout = "10s"\n')
    yield srv
    srv.stop()


def with_attachment(name: str, payload: bytes, subject: str = "attached") -> bytes:
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (f"From: someone@example.org\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=xyz\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\n"
            f"see the attachment\r\n--xyz\r\nContent-Type: application/octet-stream; name={name}\r\n"
            f"Content-Disposition: attachment; filename={name}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            ).encode() + encoded + b"--xyz--\r\n"


def nested_archive(depth: int) -> bytes:
    """MARKER in a text file, zipped, the zip in a tar.gz, that in a zip ... ``depth`` archives deep."""
    data, name = b"quarterly figures " + MARKER + b" end", "figures.txt"
    for level in range(depth):
        out = io.BytesIO()
        if level % 2 == 0:
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(name, data)
            name = f"level{level}.zip"
        else:
            with tarfile.open(fileobj=out, mode="w:gz") as t:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            name = f"level{level}.tar.gz"
        data = out.getvalue()
    return data


def deliver(node: ServerThread, rcpt: str, data: bytes) -> tuple[int, str]:
    return send_data(node, "127.0.0.1", rcpt, data)


def test_infected_mail_is_refused_naming_the_virus(node):
    user = node.add_user("av1")
    code, text = deliver(node, user, with_attachment("eicar.com", EICAR))
    assert code == 554 and "5.7.1" in text and "Dizimail-Test.EICAR" in text, (code, text)
    assert deliver(node, user, with_attachment("report.pdf", b"%PDF-1.4 clean", subject="clean"))[0] == 250
    assert [m for m in fetch_all(node, user) if b"Subject: clean" in m] and len(fetch_all(node, user)) == 1


def test_archives_are_scanned_deep(node):
    user = node.add_user("av2")
    code, text = deliver(node, user, with_attachment("figures.zip", nested_archive(10)))  # 10 archives deep
    assert code == 554 and "Dizimail-Test.Marker" in text, (code, text)
    assert fetch_all(node, user) == []


def test_logged_in_users_mail_is_scanned_too(node):
    user = node.add_user("av3")
    with submit(node, user) as s:
        s.mail(user)
        s.rcpt(user)
        code, text = s.data(with_attachment("eicar.com", EICAR))
    assert code == 554 and b"Dizimail-Test.EICAR" in text, (code, text)


def test_self_check_detects_the_test_file(node):
    assert node.call(lambda s: s.scanner.self_check()) is True


def test_mail_is_tempfailed_while_clamd_is_down_and_arrives_once_after(tmp_path, clamd):
    srv = start_server(tmp_path / "n", extra=f'\n[antivirus]\nclamd = "{clamd.address}"\ntimeout = "5s"\n')
    try:
        user = srv.add_user("av4")
        clamd.stop()
        try:
            code, text = deliver(srv, user, with_attachment("report.pdf", b"%PDF-1.4 clean", subject="retried"))
            assert code == 451 and "4.7.1" in text, (code, text)
            assert srv.call(lambda s: s.scanner.self_check()) is False
        finally:
            clamd.start()
        assert deliver(srv, user, with_attachment("report.pdf", b"%PDF-1.4 clean", subject="retried"))[0] == 250
        assert len([m for m in fetch_all(srv, user) if b"Subject: retried" in m]) == 1
    finally:
        srv.stop()
