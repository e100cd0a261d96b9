#!/bin/bash
# reference (stock) vs dizimail every layer on (bench/antispam_up.sh data, a fresh copy of the trained
# data directory for each run), workers 2 and 0, interleaved, 3 rounds
set -u
cd /work/main
OUT=bench/results/2026-12-06-stop20/antispam-workers
REF=/tmp/asref
USERS=5000 FRESH=1 TUNING=stock ../shared/reference/up.sh $REF 12000 > $OUT/ref-up.txt 2>&1
for r in 1 2 3; do
  ../shared/bench/run_all.sh --target-env $REF/target.env --only smtp_4k --out $OUT/results.jsonl > $OUT/smtp-ref-$r.txt 2>&1
  for w in 2 0; do
    [ -f /tmp/asb/dizimail.pid ] && kill $(cat /tmp/asb/dizimail.pid) 2>/dev/null; sleep 2
    rm -rf /tmp/asb/data && cp -a /tmp/asb-pristine /tmp/asb/data
    SMTP_WORKERS=$w bench/dizimail_up.sh /tmp/asb 14000 </dev/null > /dev/null 2>&1
    sleep 3
    ../shared/bench/run_all.sh --target-env /tmp/asb/target.env --name dizimail-w$w --only smtp_4k --out $OUT/results.jsonl > $OUT/smtp-dizimail-w$w-$r.txt 2>&1
  done
done
kill $(cat /tmp/asb/dizimail.pid) 2>/dev/null
../shared/reference/down.sh $REF > /dev/null 2>&1
for f in $OUT/smtp-*.txt; do echo "$(basename $f) $(grep -o '"msgs_per_s": [0-9.]*\|"server_cpu_ms_per_msg": [0-9.]*\|"other_cpu_s": [0-9.]*' $f | tail -3 | tr '\n' ' ')"; done > $OUT/summary.txt
echo done >> $OUT/summary.txt
