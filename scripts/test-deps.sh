#!/usr/bin/env bash
# Installs the real clients and servers the test suite talks to (Debian packages).
# Runs apt-get only for what is missing, and only as root; otherwise says what is missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
have swaks || need+=(swaks)
have msmtp || need+=(msmtp)
have fetchmail || need+=(fetchmail)
have getmail6 || have getmail || need+=(getmail6)
have /usr/sbin/smtp-source || need+=(postfix)
have /usr/sbin/dnsmasq || need+=(dnsmasq-base)
have openssl || need+=(openssl)
have mbsync || need+=(isync)
have offlineimap || need+=(offlineimap3)
have mutt || need+=(mutt)
have tmux || need+=(tmux)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "missing test tools: ${need[*]} (run 'make test' as root, or apt-get install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The tests start their own peers on loopback ports; the distribution's own daemon is not needed.
if [[ " ${need[*]} " == *" postfix "* ]]; then (postfix stop >/dev/null 2>&1 || true); fi
