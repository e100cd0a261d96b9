"""The config schema. Sizes take units ("25MB"), durations too ("30s", "5m")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from dizimail.util.units import parse_duration, parse_size

Size = Annotated[int, BeforeValidator(parse_size)]


def _fingerprint(value: object) -> str:
    text = str(value).replace(":", "").strip().lower()
    if text and (len(text) != 64 or any(c not in "0123456789abcdef" for c in text)):
        raise ValueError("a SHA-256 fingerprint is 64 hex digits (colons allowed)")
    return text


Fingerprint = Annotated[str, BeforeValidator(_fingerprint)]
Duration = Annotated[float, BeforeValidator(parse_duration)]

SERVICES = ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "managesieve", "https")
# Offsets from a port base: N+25 SMTP, N+587 submission ... (issue #2's command-line shape).
PORT_OFFSETS = {"smtp": 25, "submission": 587, "smtps": 465, "pop3": 110, "pop3s": 995,
                "imap": 143, "imaps": 993, "managesieve": 4190, "https": 443}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(Section):
    role: Literal["all-in-one", "inner", "gateway"] = Field("all-in-one", description="what this node runs")
    hostname: str = Field("localhost", description="name used in greetings and Received headers")
    data_dir: Path = Field(Path("."), description="base for relative paths below")
    run_as: str = Field("", description="user to switch to after binding ports when started as root")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    node_id: str = Field("", description="names this node's queue leases (default: hostname); unique per node")
    smtp_workers: int = Field(0, ge=0, le=64, description=(
        "processes beside the node that serve port 25's sessions (every anti-spam and virus check included), "
        "for a node that should use every core; the node accepts, counts and hands each connection over. "
        "With workers, port 25 offers no AUTH (users log in on submission and smtps). 0: the node serves them"))


class Listener(Section):
    address: str = Field("127.0.0.1", description="IP address to bind")
    port: int = Field(0, description="TCP port; 0 disables this listener")


class ListenersConfig(Section):
    smtp: Listener = Listener(port=25)
    submission: Listener = Listener(port=587)
    smtps: Listener = Listener(port=465)
    pop3: Listener = Listener(port=110)
    pop3s: Listener = Listener(port=995)
    imap: Listener = Listener(port=143)
    imaps: Listener = Listener(port=993)
    managesieve: Listener = Listener(port=0)
    https: Listener = Listener(port=0)


class TlsConfig(Section):
    cert_file: Path = Field(Path("tls/cert.pem"), description="PEM certificate chain")
    key_file: Path = Field(Path("tls/key.pem"), description="PEM private key")


class StorageConfig(Section):
    backend: Literal["sqlite"] = "sqlite"
    database: Path = Field(Path("dizimail.db"), description="SQLite database file")
    blob_dir: Path = Field(Path("blobs"), description="directory of content-addressed message files")
    spool_dir: Path = Field(Path("spool"), description="temporary files for messages being received")
    master_key: Path = Field(Path("secrets/master.key"), description=(
        "key that encrypts the passwords stored in the database (fetch accounts, `dizimail secret`); "
        "made 0600 at init or first use; keep it with backups of the database, apart from them"))
    commit_batch: int = Field(256, description="most transactions grouped into one fsync")
    blob_grace: Duration = Field(600.0, description="how long an unreferenced message file is kept before removal")
    sweep_interval: Duration = Field(60.0, description="how often unreferenced message files are looked for")
    index_interval: Duration = Field(1.0, description="how often new messages are added to the search index")
    recheck_interval: Duration = Field(5.0, description=(
        "how often a waiting IMAP session (IDLE, NOTIFY) looks for changes that no notification "
        "reported (made by the command line or another node)"))


class LimitsConfig(Section):
    max_message_size: Size = Field(parse_size("25MB"), description="SIZE advertised and enforced")
    max_recipients: int = Field(1000, description="RCPT commands accepted per message")
    max_command_line: Size = Field(4096, description="longest command line (AUTH initial responses need room)")
    max_bad_commands: int = Field(20, description="errors before the session is closed")
    max_connections: int = Field(10000, description="connections per listener")
    max_connections_per_ip: int = Field(200, description="concurrent connections from one IP, all protocols")
    command_timeout: Duration = Field(300.0, description="idle time between commands")
    data_timeout: Duration = Field(600.0, description="time to receive a whole message")
    max_header_line: Size = Field(65536, description="longest line inside a message before it is refused")
    tls_handshake_timeout: Duration = Field(10.0, description=(
        "time an implicit-TLS client (SMTPS, IMAPS, POP3S) has to complete its handshake; its connection "
        "counts towards the limits from the moment it is accepted"))
    max_literal_memory: Size = Field(parse_size("256MB"), description=(
        "IMAP literal bytes all sessions of the node may hold at once; a literal beyond gets NO [LIMIT] unread"))
    max_check_memory: Size = Field(parse_size("256MB"), description=(
        "bytes of received messages the checks at the end of DATA (virus scan, DKIM, content filter) may hold "
        "at once, all SMTP sessions together; a message beyond is answered 451 (the sender tries again later)"))


class AuthConfig(Section):
    argon2_time_cost: int = Field(2, description="argon2id passes (OWASP: m=19 MiB, t=2, p=1)")
    argon2_memory_cost: int = Field(19456, description="argon2id memory in KiB")
    argon2_parallelism: int = 1
    import_time_cost: int = Field(1, description="argon2id passes for bulk imports; upgraded at first login")
    import_memory_cost: int = Field(8192, description="argon2id KiB for bulk imports; upgraded at first login")
    cache_ttl: Duration = Field(300.0, description="how long a verified credential stays cached")
    fail_threshold: int = Field(10, description="failed logins from one IP (IPv6: one /64) before lockout")
    fail_window: Duration = Field(600.0, description="how long a failed login counts (per IP and per account)")
    lockout: Duration = Field(900.0, description="cooling-off period for a locked-out IP (reception goes on)")
    account_fail_threshold: int = Field(5, description=(
        "failed logins for one account, from anywhere, after which each further attempt waits (never a lock)"))
    account_delay: Duration = Field(1.0, description="first such wait; it doubles with each further failure")
    account_delay_max: Duration = Field(15.0, description="longest such wait (below clients' timeouts)")
    allow_plaintext: bool = Field(False, description="allow AUTH/USER/PASS without TLS (insecure)")
    plaintext_networks: list[str] = Field(default_factory=list, description=(
        "client networks allowed to log in without TLS, e.g. a webmail host on loopback (insecure elsewhere)"))


class SmtpConfig(Section):
    trusted_networks: list[str] = Field(default_factory=list,
                                        description="client networks allowed to relay without AUTH (insecure)")
    allow_open_relay: bool = Field(False, description="must be true to list 0.0.0.0/0 as trusted")
    reject_bare_lf: bool = Field(False, description="refuse messages containing bare LF line ends")
    future_release_max: Duration = Field(7 * 86400.0, description=(
        "longest a submitted message may wait for its release time (FUTURERELEASE, RFC 4865: HOLDFOR / "
        "HOLDUNTIL on MAIL FROM, and `dizimail notice send --at`); 0 turns it off"))


class DeliveryConfig(Section):
    smarthost: str = Field("", description=(
        "HOST[:PORT] that takes every message without a route (the gateway, for an inner server); "
        "empty: look up MX records"))
    smarthost_username: str = Field("", description="AUTH user at the smarthost (sent only over TLS)")
    smarthost_password: str = Field("", description=(
        "AUTH password at the smarthost, in plaintext; prefer `dizimail secret set smarthost-password`, "
        "which stores it encrypted and wins over this key"))
    smarthost_tls: Literal["none", "may", "verify"] = Field("may", description=(
        "TLS to the smarthost; with smarthost_username, the certificate must verify (tls_ca_file) or match "
        "smarthost_tls_fingerprint even under \"may\", or no credentials are sent and mail waits"))
    smarthost_tls_fingerprint: Fingerprint = Field("", description=(
        "SHA-256 of the smarthost's certificate (hex, colons allowed), e.g. the gateway's self-signed one: "
        "pinned, it replaces CA verification"))
    dns_servers: list[str] = Field(default_factory=list, description=(
        "resolvers this node asks (MX/A for delivery, DNSBLs for anti-spam) as IP or IP:PORT; empty: the "
        "system's /etc/resolv.conf"))
    mx_port: int = Field(25, description="port used for hosts found through MX/A records")
    helo_name: str = Field("", description="name in our EHLO (default: server.hostname)")
    concurrency: int = Field(20, description="parallel deliveries in all (the operator can change it at run time)")
    destination_concurrency: int = Field(20, description="parallel deliveries to one destination (run time too)")
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: [300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0],
        description="waits between attempts; the last one repeats")
    max_age: Duration = Field(5 * 86400.0, description="a message still undelivered after this bounces")
    warn_after: Duration = Field(4 * 3600.0, description="a delay warning goes to the sender after this")
    connect_timeout: Duration = Field(30.0, description="TCP connect and greeting")
    command_timeout: Duration = Field(300.0, description="each reply from the remote server")
    idle_timeout: Duration = Field(10.0, description="how long an unused connection is kept for reuse")
    destination_backoff: Duration = Field(60.0, description=(
        "after a failed connection, how long a destination is skipped (its messages are deferred)"))
    lease: Duration = Field(120.0, description="how long a runner owns the messages it took (renewed while working)")
    poll_interval: Duration = Field(1.0, description="how often the runner looks for due messages")
    tls_policy: dict[str, Literal["none", "may", "verify"]] = Field(default_factory=dict, description=(
        "per destination domain: verify = require STARTTLS with a valid certificate"))
    tls_ca_file: str = Field("", description="CA bundle for verified TLS (default: the system's)")
    dkim_selector: str = Field("dizimail", description="selector of keys made by `dizimail dkim generate`")
    runner: Literal["inline", "process"] = Field("inline", description=(
        "process: in a child process, the node's second core (`dizimail init` writes it); inline: in the node's "
        "own event loop"))


class FetchConfig(Section):
    default_interval: Duration = Field(120.0, description="how often a fetch account is polled")
    check_interval: Duration = Field(5.0, description="how often the node looks for fetch accounts that are due")
    on_login: bool = Field(True, description="fetch a user's accounts (and the gateway holding box) at login")
    timeout: Duration = Field(60.0, description="network timeout of one fetch")
    max_messages: int = Field(500, description="most messages taken from one account per run")
    user_private_hosts: bool = Field(False, description=(
        "users may add external mailboxes (webmail settings) on private networks or this machine; off, a host "
        "must resolve to public addresses only, so that no user makes the server reach into the inner network"))


# Networks that DNSBLs never list and the connection rate does not count: this host and the private
# ranges (an inner network's clients; asking a public DNSBL about them only tells it our layout).
LOCAL_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                  "fc00::/7", "fe80::/10")


# Points a finding adds to a message's spam score (anti-spam layer 2; the content filter adds its own,
# on the same 0-10 scale). `antispam.weights` overrides them; docs/antispam.md says what each means.
DEFAULT_WEIGHTS: dict[str, float] = {
    "pregreet.fail": 4.0, "helo.not_fqdn": 1.0, "helo.ours": 3.0, "helo.literal_mismatch": 1.0,
    "iprev.fail": 1.5, "iprev.temperror": 0.0,
    "spf.fail": 3.0, "spf.softfail": 1.0, "spf.neutral": 0.2, "spf.none": 0.3, "spf.permerror": 0.5,
    "spf.temperror": 0.0,
    "dkim.fail": 1.0, "dkim.permerror": 0.5, "arc.fail": 0.5,
    "dmarc.fail": 1.0, "dmarc.quarantine": 6.0, "dmarc.reject": 2.0, "dmarc.permerror": 0.5,
}


class AntispamConfig(Section):
    dnsbl_zones: list[str] = Field(default_factory=lambda: ["bl.spamcop.net", "zen.spamhaus.org"], description=(
        "DNS block lists asked about each client that is not logged in, not a relay network and not exempt "
        "(a listing refuses its recipients with 554 5.7.1; a zone that does not answer never blocks mail)"))
    dnsbl_timeout: Duration = Field(3.0, description="how long a DNSBL answer is waited for")
    exempt_networks: list[str] = Field(default_factory=lambda: list(LOCAL_NETWORKS), description=(
        "clients never looked up in DNSBLs nor rate-limited (default: loopback and the private ranges)"))
    max_connection_rate: int = Field(120, description=(
        "SMTP connections one client (IPv6: a /64) may open a minute before it is told 421 4.7.0; 0: no limit"))
    pregreet_wait: Duration = Field(2.0, description=(
        "how long a port-25 client's greeting is held after its first line (220-) to see whether it talks too "
        "early, as spam software does (postscreen's pregreet test); a client that waited is not tested again for "
        "a day. 0: no test"))
    dns_timeout: Duration = Field(5.0, description="how long the reverse DNS and SPF look-ups of one client may take")
    dmarc_override: list[str] = Field(default_factory=list, description=(
        "From: domains whose DMARC p=reject is not enforced here (scored as dmarc.reject instead), e.g. a "
        "partner whose mail reaches us through a forwarder that breaks both SPF and DKIM"))
    max_verify_size: Size = Field(16 * 1024 * 1024, description=(
        "messages larger than this are not DKIM/DMARC-verified (dkim=none; their memory and CPU are spared)"))
    content_min_trained: int = Field(20, description=(
        "the content filter scores only once its model has learnt this many spam and this many ham messages "
        "(`dizimail spam train`); before, it adds nothing"))
    whitelist_after: int = Field(10, description=(
        "clean, DMARC-authenticated messages from a sender to a domain after which the sender skips the content "
        "filter for that domain (a sender a local user wrote to skips it at once); 0: no automatic whitelist"))
    whitelist_keep: Duration = Field(365 * 86400.0, description=(
        "how long a sender stays on the automatic whitelist without a new clean message or a user writing to it; "
        "0: for ever (a user moving its mail into Junk removes it at once)"))
    tag_at: float = Field(5.0, description="spam score (0-10) from which the subject gets subject_tag and X-Spam-Flag")
    junk_at: float = Field(7.0, description="spam score from which mail goes to the recipient's Junk folder")
    reject_at: float = Field(9.0, description="spam score from which mail is refused at DATA (550 5.7.1)")
    reject_action: Literal["reject", "quarantine"] = Field("reject", description=(
        "what reject_at does: reject (550 5.7.1 at DATA: the sender is told) or quarantine (taken, held for "
        "`dizimail quarantine release`; the sender is not told)"))
    subject_tag: str = Field("[SPAM] ", description="put before the subject of mail scoring tag_at or more")
    gateways: list[str] = Field(default_factory=list, description=(
        "on an inner server: its gateway's networks, whose verdict headers (X-Spam-Score, Authentication-Results) "
        "are believed and file the mail (Junk, tag) by each recipient's thresholds; such headers from anyone else "
        "are removed"))
    authserv_ids: list[str] = Field(default_factory=list, description=(
        "other names of this trust boundary besides server.hostname (on an inner server: the gateway's hostname): "
        "Authentication-Results naming them are removed from mail that does not come from a gateway"))
    weights: dict[str, float] = Field(default_factory=dict, description=(
        "points a finding adds to the spam score, overriding the defaults (docs/antispam.md), e.g. "
        '{ "iprev.fail" = 3.0 }'))

    @model_validator(mode="after")
    def _known_weights(self) -> AntispamConfig:
        unknown = [k for k in self.weights if k not in DEFAULT_WEIGHTS]
        if unknown:
            raise ValueError(f"unknown weight(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_WEIGHTS)}")
        return self

    def weight(self, key: str) -> float:
        return self.weights.get(key, DEFAULT_WEIGHTS[key])


class AntivirusConfig(Section):
    clamd: str = Field("", description=(
        "clamd's TCP address (HOST:PORT, e.g. 127.0.0.1:3310) to scan every message with; empty: no virus "
        "scanning. Set, mail is never taken unscanned: while clamd is down it is tempfailed (451 4.7.1)"))
    timeout: Duration = Field(60.0, description="how long one scan may take before the message is tempfailed")
    action: Literal["reject", "quarantine"] = Field("reject", description=(
        "infected mail: reject (554 5.7.1 at DATA, naming the virus) or quarantine (taken and held; notices go "
        "out as quarantine.notify_virus says)"))
    self_check_interval: Duration = Field(3600.0, description=(
        "how often clamd is asked to detect the EICAR test file (antivirus.selfcheck.failed is logged if not)"))


Notified = Literal["recipients", "sender", "admin"]
VIRUS_NOTICES: tuple[Notified, ...] = ("recipients", "admin")


class QuarantineConfig(Section):
    keep: Duration = Field(30 * 86400.0, description="how long a quarantined message is kept before it is deleted")
    notify_virus: list[Notified] = Field(default_factory=lambda: list(VIRUS_NOTICES), description=(
        "who is told when infected mail is quarantined: its local recipients, its sender (only when the sender "
        "is an account here: a virus's sender address is forged, telling it is backscatter) and the admin"))
    notify_spam: list[Notified] = Field(default_factory=list, description=(
        "who is told when mail is quarantined for its spam score (antispam.reject_action = quarantine)"))
    admin: str = Field("", description=(
        "where admin notices go (default: the postmaster of the first local domain, as for <Postmaster>)"))
    notice_every: Duration = Field(600.0, description=(
        "after a notice, what is held for the same person within this interval is told in one digest at its "
        "end (a virus outbreak sends each person a notice and a digest per interval, not one mail per message)"))
    templates: Path = Field(Path("templates"), description=(
        "directory of notice templates that replace the built-in ones by file name "
        "(quarantine-recipients.txt, quarantine-sender.txt, quarantine-admin.txt, quarantine-digest.txt; "
        "docs/antispam.md)"))


# The checks of the policy layer (services.policy), in the order they run by default. Those in
# MANDATORY_CHECKS keep the server from being an open relay: they may be moved, never switched off.
CORE_CHECKS = ("connection-rate", "auth-required", "may-send-as", "size", "recipient-limit", "recipient",
               "routing-trick", "relay", "list-post", "block-list", "dnsbl", "pregreet", "iprev", "helo", "spf", "quota", "message-format",
               "hop-count", "mail-loop", "verdict-headers", "antivirus", "dmarc", "content")
MANDATORY_CHECKS = ("auth-required", "recipient", "routing-trick", "relay")
CheckAction = Literal["default", "tempfail", "log", "reject"]


class ListsConfig(Section):
    web_url: str = Field("", description=(
        "the HTTPS address members reach this node's web side at, e.g. https://mail.example.com (one-click "
        "unsubscription links, RFC 8058); empty: https://<server.hostname>:<listeners.https.port>, or no "
        "link when the https listener is off"))
    bounce_forget: Duration = Field(7 * 86400.0, description=(
        "a member's hard bounces count as one run while less than this apart; a run as long as the list's "
        "bounce limit disables the member"))
    confirm_keep: Duration = Field(3 * 86400.0, description="how long a subscription's confirmation link works")


class PolicyConfig(Section):
    checks: list[str] = Field(default_factory=lambda: list(CORE_CHECKS), description=(
        "the checks that decide whether mail is taken, in the order they run (docs/config.md lists them)"))
    actions: dict[str, CheckAction] = Field(default_factory=dict, description=(
        "per check: default (as the check says), tempfail (a refusal becomes temporary: try a check out "
        "without losing mail), log (only record what it would have done) or reject (a scoring check such as "
        "iprev, helo or spf refuses when it finds against the client, instead of only adding to the score)"))
    max_hops: int = Field(50, description="most Received: header fields a message may carry (RFC 5321 §6.3)")
    max_own_passes: int = Field(2, description=(
        "a message that already passed through this server this many times is refused as a mail loop"))
    quota_grace: Size = Field(0, description="how far past its quota a mailbox may go with the message that fills it")

    @model_validator(mode="after")
    def _known_and_safe(self) -> PolicyConfig:
        unknown = [c for c in [*self.checks, *self.actions] if c not in CORE_CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CORE_CHECKS)}")
        if len(set(self.checks)) != len(self.checks):
            raise ValueError("a check is listed twice in policy.checks")
        missing = [c for c in MANDATORY_CHECKS if c not in self.checks]
        if missing:
            raise ValueError(f"policy.checks must keep {', '.join(missing)} (without it the server is an open relay)")
        logged = [c for c in MANDATORY_CHECKS if self.actions.get(c) == "log"]
        if logged:
            raise ValueError(f"{', '.join(logged)} cannot be set to log only (the server would be an open relay)")
        return self


class Config(Section):
    server: ServerConfig = ServerConfig()
    listeners: ListenersConfig = ListenersConfig()
    tls: TlsConfig = TlsConfig()
    storage: StorageConfig = StorageConfig()
    limits: LimitsConfig = LimitsConfig()
    auth: AuthConfig = AuthConfig()
    smtp: SmtpConfig = SmtpConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    fetch: FetchConfig = FetchConfig()
    policy: PolicyConfig = PolicyConfig()
    antispam: AntispamConfig = AntispamConfig()
    antivirus: AntivirusConfig = AntivirusConfig()
    quarantine: QuarantineConfig = QuarantineConfig()
    lists: ListsConfig = ListsConfig()

    def path(self, p: Path) -> Path:
        """Resolve a configured path against ``server.data_dir``."""
        return p if p.is_absolute() else self.server.data_dir / p
