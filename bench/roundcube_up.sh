#!/usr/bin/env bash
# Start Debian's Roundcube (apt-get install roundcube-core roundcube-sqlite3 php-cli php-sqlite3) on PHP's
# built-in server, against an IMAP server on loopback, with everything of its own under WORKDIR: the
# comparison peer of bench/webmail_vs_roundcube.py.
#
#   bench/roundcube_up.sh WORKDIR HTTP_PORT IMAP_PORT      # stop with: kill $(cat WORKDIR/php.pid)
#
# Leaves /etc/roundcube alone: its own config directory (ROUNDCUBE_CONFIG_DIR), SQLite database, temp and
# log directories. Benchmark config only (plain HTTP on loopback, no login rate limit).
set -euo pipefail
W=${1:?usage: roundcube_up.sh WORKDIR HTTP_PORT IMAP_PORT}
HTTP=${2:?HTTP_PORT}
IMAP=${3:?IMAP_PORT}
[ -d /usr/share/roundcube ] || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  roundcube-core roundcube-sqlite3 php-cli php-sqlite3 >/dev/null
mkdir -p "$W/config" "$W/temp" "$W/logs"
W=$(cd "$W" && pwd)
cp /etc/roundcube/defaults.inc.php /etc/roundcube/mimetypes.php "$W/config/"
cat > "$W/config/config.inc.php" <<PHP
<?php
\$config = [];
\$config['db_dsnw'] = 'sqlite:///$W/rc.db?mode=0646';
\$config['imap_host'] = 'localhost:$IMAP';
\$config['des_key'] = '$(head -c 18 /dev/urandom | base64 | head -c 24)';
\$config['temp_dir'] = '$W/temp/';
\$config['log_dir'] = '$W/logs/';
\$config['plugins'] = [];
\$config['skin'] = 'elastic';
\$config['enable_spellcheck'] = false;
\$config['mail_pagesize'] = 50;
\$config['login_rate_limit'] = 0;
PHP
[ -f "$W/rc.db" ] || php -r "\$db = new PDO('sqlite:$W/rc.db'); \$db->exec(file_get_contents('/usr/share/roundcube/SQL/sqlite.initial.sql'));"
if [ -f "$W/php.pid" ] && kill -0 "$(cat "$W/php.pid")" 2>/dev/null; then kill "$(cat "$W/php.pid")"; sleep 1; fi
cd /var/lib/roundcube/public_html
ROUNDCUBE_CONFIG_DIR="$W/config" PHP_CLI_SERVER_WORKERS=2 php -S "127.0.0.1:$HTTP" -t . > "$W/php.log" 2>&1 &
echo $! > "$W/php.pid"
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$HTTP/" && break; sleep 0.1; done
echo "roundcube up: http://127.0.0.1:$HTTP/ (IMAP localhost:$IMAP), pid $(cat "$W/php.pid")"
