#!/usr/bin/env bash
# A dizimail target for ../shared/bench with a 20-rule Sieve script active for every one of the 5,000 users
# (issue #12): SMTP → mailbox runs each recipient's script at delivery.
#
#   DZ_UP=bench/sieve_up.sh ONLY=smtp bench/compare.sh OUTDIR [ROUNDS]
#
# bench/dizimail_up.sh, then bench/sieve_seed.py stores and activates the script (the same text for
# everyone, compiled once per node and cached) for user0001 … user5000. The rules are the kind users keep:
# lists, senders, subjects, sizes, flags; none matches the benchmark's messages except the last (a flag),
# so every rule is evaluated and each message still lands in INBOX (bench/count_pop3.py counts it there).
set -euo pipefail
W=${1:?usage: sieve_up.sh WORKDIR [PORTBASE]}
P=${2:-13000}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/dizimail_up.sh" "$W" "$P"
"$HERE/../.venv/bin/python" "$HERE/sieve_seed.py" --config "$(cd "$W" && pwd)/data/dizimail.toml" \
  --users "${USERS:-5000}" >&2
