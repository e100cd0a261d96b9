"""`dizimail init` as an operator runs it: names, certificate, config written safely, no half-built directory."""

from __future__ import annotations

import os
import socket
import subprocess
import tomllib
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from conftest import DIZIMAIL, dizimail_cli, write_config


def init(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DIZIMAIL, "init", *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, NO_COLOR="1"))


def names_in(cert_file: Path) -> tuple[str, list[str], list[str]]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return str(cn), san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def machine_name() -> str:
    """What an operator expects: the FQDN, or the short host name where the resolver knows no FQDN."""
    fqdn = socket.getfqdn()
    return fqdn.lower() if fqdn not in ("localhost", "localhost.localdomain") else socket.gethostname().lower()


def test_init_names_the_server_after_the_machine_in_config_and_certificate(tmp_path):
    data = tmp_path / "data"
    assert init("--data-dir", str(data)).returncode == 0
    hostname = tomllib.loads((data / "dizimail.toml").read_text())["server"]["hostname"]
    assert hostname == machine_name() and hostname != "localhost"
    cn, dns, ips = names_in(data / "tls" / "cert.pem")
    assert cn == hostname and hostname in dns and "localhost" in dns and "127.0.0.1" in ips


def test_certificate_names_the_address_the_node_listens_on(tmp_path):
    data = tmp_path / "data"
    assert init("--data-dir", str(data), "--hostname", "Mail.Corp.Test", "--listen", "127.0.0.2").returncode == 0
    cn, dns, ips = names_in(data / "tls" / "cert.pem")
    assert cn == "mail.corp.test" and dns == ["mail.corp.test", "localhost"]
    assert set(ips) == {"127.0.0.1", "127.0.0.2"}


def test_an_internationalised_hostname_is_written_in_a_labels(tmp_path):
    """邮件.电力.cn (as a Chinese operator types it, ideographic full stop included) names the server as
    greetings, Received fields and certificates can carry it: in A-labels."""
    data = tmp_path / "data"
    assert init("--data-dir", str(data), "--hostname", "邮件.电力。cn", "--domain", "电力.cn").returncode == 0
    assert tomllib.loads((data / "dizimail.toml").read_text())["server"]["hostname"] == "xn--5nq051n.xn--tfr181f.cn"
    cn, dns, _ips = names_in(data / "tls" / "cert.pem")
    assert cn == "xn--5nq051n.xn--tfr181f.cn" and "xn--5nq051n.xn--tfr181f.cn" in dns


def test_init_refuses_a_hostname_with_a_quote_or_a_line_break_and_creates_nothing(tmp_path):
    for bad in ('mail"x.test', "mail.test\n[server]", "mail test", "-mail.test", "a..b"):
        result = init("--data-dir", str(tmp_path / "data"), "--hostname", bad)
        assert result.returncode == 2 and "invalid host name" in result.stderr, result.stderr
        assert not (tmp_path / "data").exists()


def test_config_values_are_written_by_a_toml_writer_not_pasted(tmp_path):
    data = tmp_path / "data"
    hostile = 'gw.corp.test:25"\n[server]\nrun_as = "root'
    result = init("--data-dir", str(data), "--hostname", "inner.corp.test", "--role", "inner", "--smarthost", hostile)
    assert result.returncode == 0, result.stderr
    config = tomllib.loads((data / "dizimail.toml").read_text())
    assert config["delivery"]["smarthost"] == hostile and "run_as" not in config["server"]


def test_a_failed_init_removes_the_directory_it_created(tmp_path):
    data = tmp_path / "new" / "data"
    result = init("--data-dir", str(data), "--hostname", "mx.test", "--domain", "not a domain")
    assert result.returncode != 0 and "Invalid domain name" in result.stderr
    assert not (tmp_path / "new").exists()


def test_a_failed_init_in_an_existing_directory_keeps_what_was_there(tmp_path):
    data = tmp_path / "data"
    (data / "blobs").mkdir(parents=True)
    (data / "blobs" / "keep").write_text("mine")
    (data / "notes.txt").write_text("mine too")
    result = init("--data-dir", str(data), "--hostname", "mx.test", "--domain", "not a domain")
    assert result.returncode != 0
    assert sorted(os.listdir(data)) == ["blobs", "notes.txt"]
    assert (data / "blobs" / "keep").read_text() == "mine" and sorted(os.listdir(data / "blobs")) != []
    assert init("--data-dir", str(data), "--hostname", "mx.test").returncode == 0  # and the next try works


def test_dkim_generate_refuses_a_path_for_a_domain(tmp_path):
    config_file, _ = write_config(tmp_path / "data")
    for bad in ("../../tmp/x", "a/b.test", "x y.test"):
        result = dizimail_cli(config_file, "dkim", "generate", bad, "--bits", "1024", check=False)
        assert result.returncode != 0 and "Invalid domain name" in result.stderr, result.stderr
    ok = dizimail_cli(config_file, "dkim", "generate", "Example.Test", "--bits", "1024")
    assert "dizimail._domainkey.example.test." in ok.stdout


def test_init_listen_address_must_be_an_ip_address(tmp_path):
    result = init("--data-dir", str(tmp_path / "data"), "--listen", "not-an-address")
    assert result.returncode == 2 and "not an IP address" in result.stderr
    assert not (tmp_path / "data").exists()
