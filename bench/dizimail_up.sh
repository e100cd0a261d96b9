#!/usr/bin/env bash
# Start a dizimail target for ../shared/bench (mailbench.py) under WORKDIR.
#
#   bench/dizimail_up.sh WORKDIR [PORTBASE]     # default PORTBASE 13000; USERS=5000; SMTP_WORKERS=N
#
# Creates the same 5,000 users as ../shared/reference/up.sh (user0001@example.test ...,
# password pw-<localpart>) with `dizimail user import`, starts `dizimail serve` in the
# background (durability on: fsync + SQLite synchronous=FULL, as always), waits for `ready`
# and writes WORKDIR/target.env for bench/run_all.sh.  Stop with: kill $(cat WORKDIR/dizimail.pid)
#
# Password hashing: argon2id at t=1, m=8 MiB (about 4 ms per verification here), the same order
# of cost per login as the reference's SHA512-CRYPT (3.4 ms); verified logins are then cached
# as Dovecot's auth cache does in TUNING=perf.
set -euo pipefail
W=${1:?usage: dizimail_up.sh WORKDIR [PORTBASE]}
P=${2:-13000}
USERS=${USERS:-5000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DZ=${DIZIMAIL:-$HERE/../.venv/bin/dizimail}
mkdir -p "$W"
W=$(cd "$W" && pwd)
if [ ! -f "$W/data/dizimail.toml" ]; then
  "$DZ" init --data-dir "$W/data" --port-base "$P" --domain example.test --hostname bench.example.test >/dev/null
  # mailbench's POP3/IMAP clients log in without TLS, as Dovecot allows from loopback:
  # allow exactly that here (benchmark config only; the default refuses plaintext logins).
  printf '\n[auth]\nargon2_time_cost = 1\nargon2_memory_cost = 8192\nplaintext_networks = ["127.0.0.0/8"]\n' \
    >> "$W/data/dizimail.toml"
  sed -i 's/^\[server\]$/[server]\nlog_level = "WARNING"/' "$W/data/dizimail.toml"
  python3 -c "
import sys
n = int(sys.argv[1])
print('address,password')
for i in range(1, n + 1):
    print(f'user{i:04d}@example.test,pw-user{i:04d}')" "$USERS" > "$W/users.csv"
  "$DZ" user import "$W/users.csv" --config "$W/data/dizimail.toml" 2>/dev/null | tail -1
fi
# SMTP_WORKERS=N: port 25 served by N worker processes beside the node (server.smtp_workers); unset: as is.
if [ -n "${SMTP_WORKERS:-}" ]; then
  sed -i '/^smtp_workers = /d' "$W/data/dizimail.toml"
  sed -i "s/^\[server\]$/[server]\nsmtp_workers = $SMTP_WORKERS/" "$W/data/dizimail.toml"
fi
if [ -f "$W/dizimail.pid" ] && kill -0 "$(cat "$W/dizimail.pid")" 2>/dev/null; then
  kill "$(cat "$W/dizimail.pid")"; sleep 1
fi
"$DZ" serve --config "$W/data/dizimail.toml" > "$W/serve.out" 2> "$W/serve.log" &
echo $! > "$W/dizimail.pid"
for _ in $(seq 1 100); do grep -q '^ready$' "$W/serve.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready$' "$W/serve.out" || { echo "dizimail did not start; see $W/serve.log" >&2; exit 1; }
cat > "$W/target.env" <<ENV
NAME=dizimail
HOST=127.0.0.1
SMTP_PORT=$((P + 25))
IMAP_PORT=$((P + 143))
POP3_PORT=$((P + 110))
USERS=$USERS
USER_FMT='user{n:04d}@example.test'
PASS_FMT='pw-{local}'
PIDS=$(cat "$W/dizimail.pid")
WORKDIR=$W
ENV
echo "dizimail up: pid $(cat "$W/dizimail.pid"), smtp $((P + 25)), pop3 $((P + 110)); target.env in $W"
