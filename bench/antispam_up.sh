#!/usr/bin/env bash
# A dizimail target for ../shared/bench with every anti-spam layer and the virus scan on (issue #10):
#
#   bench/antispam_up.sh WORKDIR [PORTBASE]      # then bench/compare.sh with DZ_UP=bench/antispam_up.sh
#
# bench/dizimail_up.sh, plus: a local dnsmasq answering every look-up (NXDOMAIN for all but the client's
# forward-confirmed reverse name: DNSBL, SPF, DKIM and DMARC queries get real, fast negative answers),
# clamd with a small signature database of its own (no network for freshclam), the content filter trained
# on the SpamAssassin corpus's train split, and antispam.exempt_networks = [] so loopback clients are judged
# like Internet ones. Stop: kill the pids in WORKDIR/*.pid.
set -euo pipefail
W=${1:?usage: antispam_up.sh WORKDIR [PORTBASE]}
P=${2:-13000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DZ=${DIZIMAIL:-$HERE/../.venv/bin/dizimail}
SHARED=${SHARED:-$(cd "$HERE/../../shared" && pwd)}
for p in dnsmasq-base clamav-daemon; do
  dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done
mkdir -p "$W"
W=$(cd "$W" && pwd)
DNS_PORT=$((P + 53)) CLAMD_PORT=$((P + 310))
for f in dnsmasq clamd; do [ -f "$W/$f.pid" ] && kill "$(cat "$W/$f.pid")" 2>/dev/null || true; done
cat > "$W/dnsmasq.conf" <<CONF
no-resolv
no-hosts
listen-address=127.0.0.1
bind-interfaces
port=$DNS_PORT
local=/#/
host-record=bench-client.example,127.0.0.1
user=root
pid-file=$W/dnsmasq.pid
CONF
/usr/sbin/dnsmasq --conf-file="$W/dnsmasq.conf"
mkdir -p "$W/clamdb"
python3 - "$W/clamdb" <<'PY'
import hashlib, sys
eicar = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
open(f"{sys.argv[1]}/bench.hdb", "w").write(f"{hashlib.md5(eicar).hexdigest()}:{len(eicar)}:Bench.EICAR\n")
open(f"{sys.argv[1]}/bench.ndb", "w").write(f"Bench.Marker:0:*:{b'DIZIMAIL-BENCH-MARKER'.hex()}\n")
PY
mkdir -p "$W/clamtmp"
cat > "$W/clamd.conf" <<CONF
TCPSocket $CLAMD_PORT
TCPAddr 127.0.0.1
DatabaseDirectory $W/clamdb
TemporaryDirectory $W/clamtmp
PidFile $W/clamd.pid
LogFile $W/clamd.log
User root
ScanArchive yes
MaxRecursion 24
CONF
/usr/sbin/clamd -c "$W/clamd.conf"
for _ in $(seq 1 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $CLAMD_PORT), 1)" 2>/dev/null && break; sleep 0.2; done
"$HERE/dizimail_up.sh" "$W" "$P" >/dev/null
CONFIG=$W/data/dizimail.toml
if ! grep -q '^\[antivirus\]' "$CONFIG"; then
  printf '\n[antivirus]\nclamd = "127.0.0.1:%s"\n' "$CLAMD_PORT" >> "$CONFIG"
  printf '\n[antispam]\nexempt_networks = []\nmax_connection_rate = 0\n' >> "$CONFIG"
  # delivery.dns_servers: into the existing [delivery] section
  sed -i "s/^\[delivery\]$/[delivery]\ndns_servers = [\"127.0.0.1:$DNS_PORT\"]/" "$CONFIG"
  CORPUS=/tmp/dizimail-corpus/spamassassin-public
  [ -f "$CORPUS/index.tsv" ] || { mkdir -p /tmp/dizimail-corpus; tar xzf "$SHARED/corpus/spamassassin-public.tar.gz" -C /tmp/dizimail-corpus; }
  mkdir -p "$W/train/ham" "$W/train/spam"
  awk -F'\t' 'NR > 1 && $4 == "train" {print $1 "\t" $2}' "$CORPUS/index.tsv" | while IFS=$'\t' read -r path label; do
    ln -f "$CORPUS/$path" "$W/train/$label/$(echo "$path" | tr / _)"
  done
  "$DZ" spam train --ham "$W/train/ham" --spam "$W/train/spam" --config "$CONFIG" 2>/dev/null | tail -1
fi
"$HERE/dizimail_up.sh" "$W" "$P"
