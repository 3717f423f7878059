#!/usr/bin/env bash
# Starts PostgreSQL (Debian's package) and unleash-server (npm) on loopback, for the
# flag tests. Usage: .ci/unleash.sh NODE_MODULES RUN_DIR, where NODE_MODULES holds
# unleash-server and RUN_DIR (new, empty) receives the database and the logs.
# Prints the environment the tests read (FRESCO_UNLEASH_URL, FRESCO_UNLEASH_ADMIN_TOKEN,
# FRESCO_UNLEASH_CLIENT_TOKEN, FRESCO_UNLEASH_PID: the server's process group) and
# UNLEASH_PGDATA (for `pg_ctl stop`) as `export` lines, for `eval`.
set -euo pipefail
node_modules=$(cd "$1" && pwd)
dir=$2
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
http_port=$(free_port)
secret=$(python3 -c 'import secrets; print(secrets.token_hex(16))')

# PostgreSQL refuses to run as root: run it as the `postgres` user Debian's package makes.
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
data="$dir/pgdata"
mkdir -p "$data" && chmod 700 "$data"
[ "$(id -u)" != 0 ] || chown -R postgres "$dir"
"${as_pg[@]}" "$pg_bin/initdb" -D "$data" -U unleash --auth=trust >"$dir/initdb.log" 2>&1
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $dir" start >/dev/null
"${as_pg[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U unleash unleash

(
    cd "$dir"
    DATABASE_URL="postgres://unleash@127.0.0.1:$pg_port/unleash" DATABASE_SSL=false \
        HTTP_PORT="$http_port" HTTP_HOST=127.0.0.1 LOG_LEVEL=warn \
        INIT_ADMIN_API_TOKENS="*:*.$secret" INIT_BACKEND_API_TOKENS="default:development.$secret" \
        exec setsid node "$node_modules/unleash-server/dist/server.js" >"$dir/unleash.log" 2>&1
) &
unleash_pid=$!
for _ in $(seq 1 180); do
    if curl -fsS "http://127.0.0.1:$http_port/health" >/dev/null 2>&1; then break; fi
    kill -0 "$unleash_pid" 2>/dev/null || { cat "$dir/unleash.log" >&2; echo "unleash-server exited" >&2; exit 1; }
    sleep 1
done
curl -fsS "http://127.0.0.1:$http_port/health" >/dev/null || { tail -n 40 "$dir/unleash.log" >&2; exit 1; }

echo "export FRESCO_UNLEASH_URL=http://127.0.0.1:$http_port/api"
echo "export FRESCO_UNLEASH_ADMIN_TOKEN='*:*.$secret'"
echo "export FRESCO_UNLEASH_CLIENT_TOKEN='default:development.$secret'"
echo "export FRESCO_UNLEASH_PID='$unleash_pid'"
echo "export UNLEASH_PGDATA='$data'"
