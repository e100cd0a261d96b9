import smtplib


def test_server_fixture_accepts_mail(server, user):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as s:
        assert s.sendmail("a@outside.test", [user], b"Subject: x\r\n\r\nbody\r\n") == {}
