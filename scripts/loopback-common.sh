# shellcheck shell=bash disable=SC2034
# (SC2034: nb_pid is read by the scripts that source this file.)
# Shared by the scripts that start servers on loopback ports (sourced, not run):
# scripts/dovecot-diff.sh, scripts/parser-check.sh, and through scripts/dovecot-common.sh
# scripts/dovecot-fixture.sh.

# free_port: prints a TCP port free on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT: waits (10 s at most) until something listens on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start_nestbox_imap DIR PORT PASSWORD: $NB_BIN serving IMAP alone on 127.0.0.1:PORT
# (plaintext logins allowed), data in DIR/data, one user `alice` with PASSWORD; its log
# in DIR/serve.log, its pid in nb_pid.
start_nestbox_imap() {
    mkdir -p "$1"
    cat > "$1/config.ron" <<CONF
(data_dir: "$1/data", hostname: "localhost",
 imap: (listen: ["127.0.0.1:$2"], tls_listen: []),
 pop3: (listen: [], tls_listen: []), managesieve: (listen: []),
 lmtp: (listen: [], unix_socket: None), auth: (plaintext: Always))
CONF
    echo "$3" | "$NB_BIN" --config "$1/config.ron" user add alice --password-stdin >/dev/null
    "$NB_BIN" --config "$1/config.ron" serve > "$1/serve.log" 2>&1 &
    nb_pid=$!
}
