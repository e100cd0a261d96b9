#!/usr/bin/env bash
# Installs the real clients and servers the test suite talks to (Debian packages), then checks that
# each can do what the tests ask of it: a binary that exists is not enough (swaks without Perl's TLS
# modules prints "TLS not available" and fails every STARTTLS test).
# Runs apt-get only for what is missing, and only as root; otherwise says what is missing.
set -euo pipefail

# Each line: a capability check (a shell command that must succeed), " => ", then the packages that give it.
# (Cyrus SASL's PLAIN module: without it mbsync falls back to LOGIN; it is only recommended by libsasl2.)
# (Pigeonhole's sieve-test is the reference our Sieve interpreter is compared with; sieve-connect a ManageSieve peer.)
# (Chromium drives the web pages' tests through Playwright, never Playwright's own browser download; a CJK
# font lets its screenshots show the Chinese pages as users see them.)
CHECKS=(
  "command -v swaks => swaks"
  "perl -MNet::SSLeay -e1 => libnet-ssleay-perl"
  "perl -MIO::Socket::SSL -e1 => libio-socket-ssl-perl"
  "perl -MAuthen::SASL -e1 => libauthen-sasl-perl"
  "perl -MDigest::HMAC_MD5 -e1 => libdigest-hmac-perl"
  "command -v msmtp => msmtp"
  "command -v fetchmail => fetchmail"
  "command -v getmail6 || command -v getmail => getmail6"
  "test -x /usr/sbin/smtp-source -a -x /usr/sbin/smtp-sink -a -x /usr/sbin/postfix => postfix"
  "test -x /usr/sbin/dnsmasq => dnsmasq-base"
  "command -v openssl => openssl"
  "command -v mbsync => isync"
  "ls /usr/lib/*/sasl2/libplain.so* => libsasl2-modules"
  "command -v offlineimap => offlineimap3"
  "command -v mutt => mutt"
  "command -v tmux => tmux"
  "test -r /etc/ssl/certs/ca-certificates.crt => ca-certificates"
  "test -x /usr/sbin/clamd => clamav-daemon"
  "test -x /usr/bin/chromium => chromium"
  "command -v sieve-test => dovecot-sieve"
  "command -v sieve-connect => sieve-connect"
  "test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc => fonts-wqy-microhei"
)

missing() {
  local need=() entry check pkgs
  for entry in "${CHECKS[@]}"; do
    check=${entry%% => *}
    pkgs=${entry#* => }
    if ! (eval "$check") >/dev/null 2>&1; then
      need+=($pkgs)
    fi
  done
  echo "${need[@]:-}"
}

need=$(missing)
if [ -z "$need" ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "missing test tools: $need (run 'make test' as root, or apt-get install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is wanted
apt-get install -y -qq --no-install-recommends $need >/dev/null
# The tests start their own peers on loopback ports; the distribution's own daemon is not needed.
if [[ " $need " == *" postfix "* ]]; then (postfix stop >/dev/null 2>&1 || true); fi
# dovecot-sieve brings Dovecot itself: the tests only run its sieve-test (the Sieve differential test).
if [[ " $need " == *" dovecot-sieve "* ]]; then (service dovecot stop >/dev/null 2>&1 || true); fi
# The tests start their own clamd with their own signatures (no freshclam: there may be no network).
if [[ " $need " == *" clamav-daemon "* ]]; then
  (service clamav-daemon stop >/dev/null 2>&1 || true; service clamav-freshclam stop >/dev/null 2>&1 || true)
fi

still=$(missing)
if [ -n "$still" ]; then
  echo "test tools still not usable after installing: $still" >&2
  exit 1
fi
