#!/usr/bin/env bash
# Side-by-side, interleaved: dizimail vs the Postfix + Dovecot reference (../shared/reference).
#
#   bench/compare.sh OUTDIR [ROUNDS]        # as root; default 3 rounds; about 11 minutes
#   DZ_UP=bench/antispam_up.sh bench/compare.sh OUTDIR   # dizimail with every anti-spam layer and clamd on
#   DZ_UP=bench/sieve_up.sh ONLY=smtp bench/compare.sh OUTDIR   # a 20-rule Sieve script for every user; SMTP only
#
#  - SMTP 4 KiB to mailbox (mailbench smtp_4k, 20 lanes of smtp-source, 5,000 messages) against the
#    reference in TUNING=stock. The reference is verified over IMAP (messages visible in INBOX);
#    dizimail runs with --verify none because its 250 is sent only after the message is committed
#    into the recipient's mailbox (docs/queue.md), so accepted = in mailbox. After each dizimail
#    round bench/count_pop3.py counts the recipients' mailboxes over POP3 and fails if any message
#    is missing.
#  - POP3 and IMAP at 50 concurrent sessions against the reference in TUNING=perf (tuned Dovecot).
#    dizimail refuses a second concurrent session on one maildrop (-ERR [IN-USE], as issue #2
#    asks); with 50 clients over 200 users some sessions collide: mailbench counts them as errors,
#    and sessions/s counts completed sessions only.
# Results: OUTDIR/results.jsonl, OUTDIR/*.txt, and a min/median/max summary per target.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SHARED=${SHARED:-$(cd "$HERE/../../shared" && pwd)}
OUT=${1:?usage: compare.sh OUTDIR [ROUNDS]}
ROUNDS=${2:-3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=$HERE/../.venv/bin/python
need=()
for p in postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd swaks; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
REF=$(mktemp -d /tmp/dzref.XXXXXX)
DZ=$OUT/dizimail
cleanup() {
  "$SHARED/reference/down.sh" "$REF" >/dev/null 2>&1 || true
  [ -f "$DZ/dizimail.pid" ] && kill "$(cat "$DZ/dizimail.pid")" 2>/dev/null || true
  for f in dnsmasq clamd; do [ -f "$DZ/$f.pid" ] && kill "$(cat "$DZ/$f.pid")" 2>/dev/null || true; done
}
trap cleanup EXIT
echo "== starting reference (stock) and dizimail" >&2
USERS=5000 FRESH=1 TUNING=stock "$SHARED/reference/up.sh" "$REF" 12000 > "$OUT/ref-up.txt"
"${DZ_UP:-$HERE/dizimail_up.sh}" "$DZ" 13000 > "$OUT/dizimail-up.txt"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r smtp_4k: reference" >&2
  "$SHARED/bench/run_all.sh" --target-env "$REF/target.env" --only smtp_4k --out "$OUT/results.jsonl" \
    > "$OUT/smtp-ref-$r.txt" 2>&1
  echo "== round $r smtp_4k: dizimail" >&2
  before=$("$PY" "$HERE/count_pop3.py" --port 13110 --first 2 --last 4800)
  "$SHARED/bench/run_all.sh" --target-env "$DZ/target.env" --only smtp_4k \
    --out "$OUT/results.jsonl" > "$OUT/smtp-dizimail-$r.txt" 2>&1
  after=$("$PY" "$HERE/count_pop3.py" --port 13110 --first 2 --last 4800)
  accepted=$(grep -o '"accepted": [0-9]*' "$OUT/smtp-dizimail-$r.txt" | head -1 | grep -o '[0-9]*$')
  echo "dizimail round $r: accepted $accepted, mailboxes grew by $((after - before))" | tee -a "$OUT/checks.txt" >&2
  [ "$((after - before))" -ge "$accepted" ] || { echo "messages missing from mailboxes" >&2; exit 1; }
done
if [ "${ONLY:-}" = smtp ]; then
  for n in reference-postfix-dovecot dizimail; do
    echo; echo "### $n ($ROUNDS rounds)"
    python3 "$SHARED/bench/mailbench.py" aggregate --target "$n" "$OUT/results.jsonl"
  done | tee "$OUT/summary.txt"
  exit 0
fi
echo "== restarting reference in TUNING=perf" >&2
TUNING=perf "$SHARED/reference/up.sh" "$REF" 12000 > "$OUT/ref-up-perf.txt"
"$PY" "$HERE/seed_pop3.py" --smtp-port 13025 --pop3-port 13110 > "$OUT/seed-dizimail.txt"
. "$DZ/target.env"
python3 "$SHARED/bench/mailbench.py" seed --name dizimail --port 13025 --imap-port 13143 \
  --first-user 4801 --last-user 5000 > "$OUT/seed-dizimail-imap.txt"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r imap: reference (perf)" >&2
  "$SHARED/bench/run_all.sh" --target-env "$REF/target.env" --only imap --out "$OUT/results.jsonl" \
    > "$OUT/imap-ref-$r.txt" 2>&1
  echo "== round $r imap: dizimail" >&2
  "$SHARED/bench/run_all.sh" --target-env "$DZ/target.env" --only imap --out "$OUT/results.jsonl" \
    > "$OUT/imap-dizimail-$r.txt" 2>&1
done
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r pop3: reference (perf)" >&2
  "$SHARED/bench/run_all.sh" --target-env "$REF/target.env" --only pop3 --out "$OUT/results.jsonl" \
    > "$OUT/pop3-ref-$r.txt" 2>&1
  echo "== round $r pop3: dizimail" >&2
  python3 "$SHARED/bench/mailbench.py" pop3 --name dizimail --port 13110 --pids "$PIDS" \
    --first-user 4801 --last-user 5000 --concurrency 50 --seconds 15 --out "$OUT/results.jsonl" \
    > "$OUT/pop3-dizimail-$r.txt" 2>&1
done
for n in reference-postfix-dovecot dizimail; do
  echo; echo "### $n ($ROUNDS rounds)"
  python3 "$SHARED/bench/mailbench.py" aggregate --target "$n" "$OUT/results.jsonl"
done | tee "$OUT/summary.txt"
