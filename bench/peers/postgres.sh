#!/usr/bin/env bash
# PostgreSQL (Debian's postgresql, 15 on bookworm): one node (no replica), initdb into DIR,
# run as the `postgres` user (initdb refuses root). fsync and synchronous_commit are on,
# their defaults: a commit returns after its WAL is fsynced on this one node.
source "$(dirname "$0")/lib.sh"
parse_args "$@"

PORT=24291
# Room for one connection per in-flight enqueue (4 producers x 16) plus the workers.
MAX_CONNECTIONS=200
PG_USER=postgres

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$dir" ] || die "PostgreSQL is missing (run peers/install.sh)"
  echo "$dir"
}

# Prefix that runs a command as $PG_USER when we are root. `setpriv` execs (no extra
# process), so the PID recorded for the server is the postmaster itself.
AS_PG=()
[ "$(id -u)" -eq 0 ] && AS_PG=(setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups)

start() {
  local bin
  bin="$(pg_bin)"
  require_ports_free $PORT
  "$bin/postgres" --version >"$DIR/version" 2>&1 || true
  mkdir -p "$DIR/data"
  if [ "$(id -u)" -eq 0 ]; then
    id "$PG_USER" >/dev/null 2>&1 || die "user $PG_USER is missing"
    chown -R "$PG_USER:" "$DIR"
  fi
  "${AS_PG[@]}" "$bin/initdb" -D "$DIR/data" --auth=trust --username=postgres --no-instructions \
    >"$DIR/initdb.log" 2>&1 || die "initdb failed; see $DIR/initdb.log"
  "${AS_PG[@]}" "$bin/postgres" -D "$DIR/data" -p $PORT -k "$DIR" \
    -c listen_addresses=127.0.0.1 -c max_connections=$MAX_CONNECTIONS \
    -c fsync=on -c synchronous_commit=on \
    </dev/null >"$DIR/postgres.log" 2>&1 &
  record_pid $!
  echo "host=127.0.0.1 port=$PORT user=postgres dbname=postgres" >"$DIR/endpoints"
  wait_until "postgres" "$bin/pg_isready" -h 127.0.0.1 -p $PORT
}

case "$ACTION" in
  start) start ;;
  # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
  stop) stop_recorded INT ;;
  *) die "unknown action $ACTION" ;;
esac
