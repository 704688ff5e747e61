#!/usr/bin/env bash
# Every table in BENCHMARKS.md: each section of `cargo bench --bench api` in
# a process of its own (so the peak memory it prints is that section's),
# one at a time, on SQLite and then on PostgreSQL.
#
#   bash benches/all.sh                  # every section, both backends
#   bash benches/all.sh results wave     # some sections
#   BACKENDS=sqlite bash benches/all.sh  # one backend
#
# PostgreSQL is a cluster of the benchmark's own in target/bench-pg (Debian's
# postgresql package; started on loopback if not running, left running for
# the next run, `fsync` on as in production — the tests turn it off, the
# benchmarks may not). The results and mobility data sets live in it and in
# target/bench-results and target/bench-mobility, and are built only once.
# Each section's output goes to target/bench-logs/<section>-<backend>.log.
# Other PEIL_BENCH_* variables (see benches/api.rs) pass through.
set -euo pipefail
cd "$(dirname "$0")/.."

sections=("$@")
[[ ${#sections[@]} -gt 0 ]] || sections=(answers wave mail results import api mobility demo)
read -r -a backends <<<"${BACKENDS:-sqlite postgres}"
logs=target/bench-logs
mkdir -p "$logs"

# What each section is measured at in BENCHMARKS.md, beyond the defaults.
extra() {
    case $1 in
        wave) echo "PEIL_BENCH_WAVE_PEOPLE=${PEIL_BENCH_WAVE_PEOPLE:-130000}" ;;
        mail) echo "PEIL_BENCH_MAIL_RUNS=${PEIL_BENCH_MAIL_RUNS:-5}" ;;
    esac
}

cluster=$PWD/target/bench-pg
port=${PEIL_BENCH_PG_PORT:-55439}
as_postgres=()
start_cluster() {
    local pg_bin
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -x "$pg_bin/initdb" ]] || { echo "PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2; exit 1; }
    if [[ $(id -u) -eq 0 ]]; then
        as_postgres=(runuser -u postgres --) # initdb refuses to run as root
    fi
    if [[ ! -d "$cluster/data" ]]; then
        mkdir -p "$cluster"
        [[ $(id -u) -ne 0 ]] || chown postgres:postgres "$cluster"
        ${as_postgres[@]+"${as_postgres[@]}"} "$pg_bin/initdb" -D "$cluster/data" -U peil --auth=trust >"$cluster/initdb.log" 2>&1 \
            || { cat "$cluster/initdb.log"; exit 1; }
    fi
    if ! ${as_postgres[@]+"${as_postgres[@]}"} "$pg_bin/pg_ctl" -D "$cluster/data" status >/dev/null 2>&1; then
        ${as_postgres[@]+"${as_postgres[@]}"} "$pg_bin/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w \
            -o "-p $port -k $cluster -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null \
            || { cat "$cluster/server.log"; exit 1; }
    fi
}

# The database a section uses: the API, import and submissions sections make
# one of their own per server beside `postgres`; the others keep theirs.
database_of() {
    case $1 in
        api | import | answers) echo postgres ;;
        *)
            psql -h 127.0.0.1 -p "$port" -U peil -d postgres -tAc \
                "SELECT 1 FROM pg_database WHERE datname = 'bench_$1'" | grep -q 1 \
                || psql -h 127.0.0.1 -p "$port" -U peil -d postgres -qc "CREATE DATABASE bench_$1" >&2 \
                || exit 1
            echo "bench_$1"
            ;;
    esac
}

cargo bench --locked --bench api --no-run
for backend in "${backends[@]}"; do
    url=()
    if [[ $backend == postgres ]]; then
        start_cluster
    fi
    for section in "${sections[@]}"; do
        if [[ $backend == postgres ]]; then
            [[ $section != demo ]] || continue # the generator's table is SQLite's
            url=("PEIL_BENCH_BACKEND_URL=postgres://peil@127.0.0.1:$port/$(database_of "$section")")
        fi
        log=$logs/$section-$backend.log
        printf '\n==== %s on %s (%s) ====\n' "$section" "$backend" "$log"
        # shellcheck disable=SC2046
        env PEIL_BENCH_ONLY="$section" ${url[@]+"${url[@]}"} $(extra "$section") \
            cargo bench --locked --bench api >"$log" 2>&1 \
            || { tail -n 30 "$log"; exit 1; }
        grep -E '^(\||peak RSS)|medians\)$' "$log" || true
    done
done
