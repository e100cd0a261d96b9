"""The Authentication-Results header (RFC 8601) from findings: values quoted when they are not plain
tokens, comments stripped to a host name's characters, the header ASCII whatever the sender wrote."""

from dizimail.services.policy.report import authentication_results, score, summary
from dizimail.services.policy.verdict import Finding


def test_header_lists_each_authentication_result():
    findings = [Finding("iprev", 0.0, "ok", "iprev", "pass", (("policy.iprev", "192.0.2.1"),), "mail.example.org"),
                Finding("helo", 1.0, "not a FQDN"),  # no method: points only, not in the header
                Finding("spf", 3.0, "fail", "spf", "fail", (("smtp.mailfrom", "a@example.org"),))]
    assert authentication_results("mx.example.test", findings) == (
        b"Authentication-Results: mx.example.test;\r\n\tiprev=pass policy.iprev=192.0.2.1 (mail.example.org);\r\n"
        b"\tspf=fail smtp.mailfrom=a@example.org\r\n")
    assert score(findings) == 4.0
    assert summary(findings) == "iprev=pass helo(+1) spf=fail(+3)"
    assert authentication_results("mx.example.test", [findings[1]]) == b""


def test_hostile_values_cannot_break_out_of_the_header():
    findings = [Finding("spf", 0.0, "x", "spf", "pass", (("smtp.mailfrom", 'a";b=c (x)@example.org'),),
                        "evil)\r\nX-Injected: 1"),
                Finding("spf", 0.0, "x", "spf", "pass", (("smtp.mailfrom", "张三@电力.cn"),))]
    header = authentication_results("mx.example.test", findings)
    assert b"\r\nX-Injected" not in header and header.isascii()
    assert b'smtp.mailfrom="a\\";b=c (x)@example.org" (evilX-Injected 1)' in header
    assert b"smtp.mailfrom=xn--tfr181f.cn" in header
