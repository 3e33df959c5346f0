# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are read by the scripts that source this file.)
# Shared by the scripts that drive Debian's Roundcube in headless Chromium (sourced, not
# run): scripts/roundcube-sieve.sh and scripts/real-clients.sh. Needs python3.

# rc_need: adds to the array NB_MISSING the Debian packages that Roundcube,
# PHP, Chromium and Node need and that are not installed.
NB_MISSING=()
rc_need() {
    [ -f /usr/share/roundcube/index.php ] || NB_MISSING+=(roundcube-core roundcube-sqlite3)
    [ -f /usr/share/roundcube/plugins/managesieve/managesieve.php ] || NB_MISSING+=(roundcube-plugins)
    command -v php >/dev/null || NB_MISSING+=(php-cli php-cgi)
    php -m 2>/dev/null | grep -qi '^pdo_sqlite$' || NB_MISSING+=(php-sqlite3)
    command -v chromium >/dev/null || NB_MISSING+=(chromium)
    command -v node >/dev/null || NB_MISSING+=(nodejs)
    command -v npm >/dev/null || NB_MISSING+=(npm)
    command -v python3 >/dev/null || NB_MISSING+=(python3)
}

# rc_install NAME: installs the packages in NB_MISSING from Debian's archive, as root
# (NAME is the calling script, for the message when not root).
rc_install() {
    [ ${#NB_MISSING[@]} -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ]; then
        echo "$1: install ${NB_MISSING[*]} first (Debian packages)" >&2
        return 1
    fi
    apt-get update -qq
    # php-cgi first: it satisfies roundcube-core's `php` dependency without Apache.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        php-cgi php-cli php-sqlite3 php-mbstring php-intl php-xml "${NB_MISSING[@]}"
}

# rc_playwright: installs playwright-core from the npm registry into
# ~/.cache/nestbox-roundcube unless it is there (1.65.2, or 1.61.1 under Node 18,
# Debian 12's; PLAYWRIGHT_CORE=VERSION for another). No browser download: the UI scripts
# drive Debian's /usr/bin/chromium. Sets RC_NODE_PATH.
rc_playwright() {
    local version cache
    # playwright-core 1.62 and later need Node 20.
    if [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
        version=${PLAYWRIGHT_CORE:-1.65.2}
    else
        version=${PLAYWRIGHT_CORE:-1.61.1}
    fi
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/nestbox-roundcube/playwright-core-$version
    if [ ! -f "$cache/node_modules/playwright-core/package.json" ]; then
        echo "== npm install playwright-core@$version (into $cache)"
        mkdir -p "$cache"
        (cd "$cache" && npm install --no-save --no-audit --no-fund --silent "playwright-core@$version")
    fi
    RC_NODE_PATH=$cache/node_modules
}

rc_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# rc_start DIR IMAP_HOST MANAGESIEVE_HOST PLUGINS: serves Debian's Roundcube tree with
# `php -S` on a free loopback port, with its own config in DIR/config (Debian's
# iniset.php reads ROUNDCUBE_CONFIG_DIR): SQLite database, logs (DIR/logs, with the IMAP
# and ManageSieve transcripts) and temp files in DIR. IMAP_HOST and MANAGESIEVE_HOST are
# Roundcube host strings (tls:// = STARTTLS, ssl:// = implicit TLS; the certificate is
# not verified, nestbox's is self-signed); PLUGINS a PHP list, e.g. "['managesieve']". No
# system config file is touched. Sets RC_URL and RC_PHP_PID; rc_stop stops it.
rc_start() {
    local dir=$1 imap=$2 sieve=$3 plugins=$4 port des_key
    port=$(rc_free_port)
    mkdir -p "$dir/config" "$dir/logs" "$dir/temp"
    # Roundcube reads its defaults from the config dir too.
    ln -s /etc/roundcube/defaults.inc.php /etc/roundcube/mimetypes.php "$dir/config/"
    des_key=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    cat > "$dir/config/config.inc.php" <<PHP
<?php
\$config = [];
\$config['db_dsnw'] = 'sqlite:///$dir/roundcube.db?mode=0600';
\$config['imap_host'] = '$imap';
\$config['smtp_host'] = '';
\$config['managesieve_host'] = '$sieve';
// nestbox's generated certificate is self-signed.
\$config['imap_conn_options'] = \$config['managesieve_conn_options'] = [
    'ssl' => ['verify_peer' => false, 'verify_peer_name' => false, 'allow_self_signed' => true],
];
\$config['plugins'] = $plugins;
\$config['temp_dir'] = '$dir/temp/';
\$config['log_dir'] = '$dir/logs/';
\$config['des_key'] = '$des_key';
\$config['skin'] = 'elastic';
\$config['language'] = 'en_US';
\$config['mail_domain'] = 'localhost';
\$config['support_url'] = '';
\$config['enable_installer'] = false;
// The ManageSieve and IMAP conversations, in logs/sieve and logs/imap.
\$config['managesieve_debug'] = true;
\$config['imap_debug'] = true;
PHP
    echo "== starting Roundcube $(rc_version) on 127.0.0.1:$port"
    ROUNDCUBE_CONFIG_DIR=$dir/config PHP_CLI_SERVER_WORKERS=4 \
        setsid php -S "127.0.0.1:$port" -t /var/lib/roundcube/public_html > "$dir/php.log" 2>&1 &
    RC_PHP_PID=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
        kill -0 "$RC_PHP_PID" 2>/dev/null || { echo "php -S exited" >&2; return 1; }
        sleep 0.1
    done
    RC_URL=http://127.0.0.1:$port/
}

rc_version() {
    sed -n "s/.*'RCMAIL_VERSION', '\([^']*\)'.*/\1/p" /usr/share/roundcube/program/include/iniset.php
}

# rc_stop: stops php -S and its workers (the process group setsid gave them).
rc_stop() {
    if [ -n "${RC_PHP_PID:-}" ]; then
        kill -TERM -- "-$RC_PHP_PID" 2>/dev/null || true
        wait "$RC_PHP_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 -- "-$RC_PHP_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    RC_PHP_PID=
}
