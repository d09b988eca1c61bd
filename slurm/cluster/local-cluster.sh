#!/usr/bin/env bash
# A real SLURM cluster on this one machine, for tests and CI (Debian bookworm, run as root).
#
#   local-cluster.sh install   apt-get install slurm, munge and MariaDB (quick when already there)
#   local-cluster.sh start     start munged, MariaDB, slurmdbd, slurmctld and slurmd n1..n3; wait for idle
#   local-cluster.sh stop      stop every daemon it started, and every job process left on the nodes
#   local-cluster.sh status    sinfo + accounting check; exit 1 when the cluster is not up
#   local-cluster.sh env       print the client environment (same as $HPCGAN_SLURM_DIR/env)
#
# All state lives in $HPCGAN_SLURM_DIR (default /tmp/hpcgan-slurm). Clients need only
#   . /tmp/hpcgan-slurm/env        # export SLURM_CONF=/tmp/hpcgan-slurm/etc/slurm.conf
#
# Every daemon runs inside one private mount namespace (held by a `sleep infinity`), in which a
# private copy of /etc/hosts, with "127.0.0.1 n1 n2 n3" added, is bind-mounted over /etc/hosts. Jobs
# inherit that namespace, so the node names resolve inside jobs, and the machine's /etc/hosts stays
# untouched. `stop` kills whatever is left in that namespace, so nothing survives it.
set -euo pipefail
# Close inherited descriptors (a CI runner's pipes): a daemon holding one would keep the runner waiting.
for _fd in /proc/$$/fd/*; do
    _fd=${_fd##*/}
    case $_fd in 0 | 1 | 2 | 255) ;; *) eval "exec $_fd>&-" 2>/dev/null || true ;; esac
done
unset _fd

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${HPCGAN_SLURM_DIR:-/tmp/hpcgan-slurm}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac   # daemons chdir: every path must be absolute
DIR=${DIR%/}
CONF=$DIR/etc/slurm.conf
NODES=(n1 n2 n3)
PKGS=(slurm-wlm slurmctld slurmd slurm-client slurmdbd munge mariadb-server mariadb-client)

die() { echo "local-cluster: $*" >&2; exit 1; }
log() { echo "local-cluster: $*"; }

# ---------------------------------------------------------------------------------------- install
cmd_install() {
    local missing=() p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then log "packages already installed"; return 0; fi
    [ "$(id -u)" = 0 ] || die "install needs root (missing: ${missing[*]})"
    log "installing ${missing[*]}"
    local aptlog=/tmp/hpcgan-slurm-apt.log
    {
        apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PKGS[@]}"
    } >"$aptlog" 2>&1 || die "apt-get install failed (log: $aptlog)"
    log "packages installed"
}

# ---------------------------------------------------------------------------------------- helpers
# alive PIDFILE COMM: the pid in PIDFILE runs and its command name is COMM (guards against pid reuse).
alive() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(tr -dc 0-9 2>/dev/null <"$1") || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    local st
    st=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]  # a zombie (init reaps slowly here) counts as gone
}
pidof_file() { tr -dc 0-9 2>/dev/null <"$1" || true; }
phase() { echo "$(date +%T.%3N) $*" >>"$DIR/log/start.log"; }  # start-up timings

# name|pidfile|comm of every daemon, in start order.
daemons() {
    echo "namespace|$DIR/run/ns.pid|sleep"
    echo "munged|$DIR/run/munged.pid|munged"
    echo "mariadb|$DIR/run/mariadb.pid|mariadbd"
    echo "slurmdbd|$DIR/run/slurmdbd.pid|slurmdbd"
    echo "slurmctld|$DIR/run/slurmctld.pid|slurmctld"
    local n
    for n in "${NODES[@]}"; do echo "slurmd-$n|$DIR/run/slurmd.$n.pid|slurmd"; done
}

# wait_for SECONDS WHAT LOG CMD...: retry CMD (a function, or a program run under `timeout 10`)
# every 0.2 s; when SECONDS have passed, die naming WHAT and LOG.
wait_for() {
    local secs=$1 what=$2 logf=$3 end
    shift 3
    end=$((SECONDS + secs))
    while :; do
        if [ "$(type -t "$1")" = function ]; then "$@" >/dev/null 2>&1 && return 0
        else timeout 10 "$@" >/dev/null 2>&1 && return 0; fi
        [ $SECONDS -lt $end ] || die "$what did not come up within ${secs}s (log: $logf)"
        sleep 0.2
    done
}

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# Ports: base+0 slurmctld, +1 slurmdbd, +2 MariaDB, +3.. slurmd n1..n3. Chosen once, kept in $DIR/ports.
# `choose_ports keep` takes the saved base as it is (the running cluster holds those ports).
choose_ports() {
    local base="" b k ok
    if [ -s "$DIR/ports" ]; then base=$(tr -dc 0-9 <"$DIR/ports"); fi
    if [ -n "${HPCGAN_SLURM_PORT_BASE:-}" ]; then base=$HPCGAN_SLURM_PORT_BASE; fi
    if [ -n "$base" ] && [ "${1:-}" != keep ]; then
        for ((k = 0; k < 3 + ${#NODES[@]}; k++)); do
            port_busy $((base + k)) && { [ -n "${HPCGAN_SLURM_PORT_BASE:-}" ] &&
                die "port $((base + k)) (from HPCGAN_SLURM_PORT_BASE) is in use"; base=""; break; }
        done
    fi
    if [ -z "$base" ]; then
        for ((b = 16800; b < 17800; b += 10)); do
            ok=1
            for ((k = 0; k < 3 + ${#NODES[@]}; k++)); do port_busy $((b + k)) && { ok=0; break; }; done
            [ $ok = 1 ] && { base=$b; break; }
        done
        [ -n "$base" ] || die "no free port range found in 16800-17800"
    fi
    [ -n "$base" ] || die "no saved ports in $DIR/ports"
    echo "$base" >"$DIR/ports"
    CTLD_PORT=$base DBD_PORT=$((base + 1)) DB_PORT=$((base + 2))
    SLURMD_PORTS="$((base + 3))-$((base + 2 + ${#NODES[@]}))"
}

render() {  # render TEMPLATE OUT MODE
    sed -e "s|@DIR@|$DIR|g" -e "s|@HOST@|$HOST|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
        -e "s|@DBD_PORT@|$DBD_PORT|g" -e "s|@DB_PORT@|$DB_PORT|g" -e "s|@SLURMD_PORTS@|$SLURMD_PORTS|g" \
        -e "s|@DB_PASS@|$DB_PASS|g" "$1" >"$2.tmp"
    chmod "$3" "$2.tmp"
    mv -f "$2.tmp" "$2"
}

render_configs() {  # render_configs OUTDIR: every file the daemons read
    render "$HERE/slurm.conf.in" "$1/slurm.conf" 644
    render "$HERE/slurmdbd.conf.in" "$1/slurmdbd.conf" 600
    render "$HERE/gres.conf.in" "$1/gres.conf" 644
    : >"$1/plugstack.conf"
    # The private /etc/hosts: the machine's own entries plus the node names.
    { grep -vE '(^|\s)n[0-9]+(\s|$)' /etc/hosts || true; cat "$HERE/hosts.add"; } >"$1/hosts"
    chmod 644 "$1/hosts"
}

write_env() {
    cat >"$DIR/env" <<EOF
# Client environment of the local hpcgan SLURM cluster: . $DIR/env
export SLURM_CONF=$CONF
export HPCGAN_SLURM_DIR=$DIR
EOF
}

# Run a command inside the cluster's mount namespace, with the cluster's config.
inns() { nsenter -t "$NSPID" -m -- env SLURM_CONF="$CONF" "$@"; }

# nodes_up: like sinfo_idle, but first resumes nodes left drained/down/invalid by an earlier run
# (slurmctld keeps node states across restarts; a fresh start should give usable nodes).
nodes_up() {
    local out
    out=$(SLURM_CONF=$CONF sinfo -h -N -o '%N %t' 2>/dev/null) || return 1
    if grep -qE ' (drain|drng|down|inval|fail|failg)$' <<<"$out"; then
        SLURM_CONF=$CONF scontrol update nodename="$(IFS=,; echo "${NODES[*]}")" state=resume >/dev/null 2>&1 || true
    fi
    sinfo_idle
}
sinfo_idle() {  # all nodes registered and idle (or allocated/mixed: already running jobs)
    local out
    out=$(SLURM_CONF=$CONF sinfo -h -N -o '%N %t' 2>/dev/null) || return 1
    [ "$(grep -cE ' (idle|mix|alloc|comp)$' <<<"$out")" -ge ${#NODES[@]} ]
}
acct_ok() { SLURM_CONF=$CONF sacct -n -X -S now-1minutes -o JobID >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------- start
all_running() {
    local name pf comm
    [ -s "$CONF" ] || return 1
    while IFS='|' read -r name pf comm; do alive "$pf" "$comm" || return 1; done < <(daemons)
}
any_running() {
    local name pf comm
    while IFS='|' read -r name pf comm; do alive "$pf" "$comm" && return 0; done < <(daemons)
    return 1
}

cmd_start() {
    [ "$(id -u)" = 0 ] || die "start needs root (the daemons run as root/munge)"
    local b
    for b in munged mungekey mariadbd mariadb-install-db mariadb mariadb-admin slurmdbd slurmctld slurmd \
        sacctmgr sinfo sacct scontrol nsenter unshare runuser ss; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
            die "missing program $b; run: $HERE/local-cluster.sh install"
    done
    export PATH=$PATH:/usr/sbin:/sbin
    mkdir -p "$DIR/etc"
    chmod 755 "$DIR"
    HOST=$(hostname -s)
    [ -s "$DIR/etc/dbpass" ] || { (umask 077; head -c 18 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$DIR/etc/dbpass"); }
    DB_PASS=$(cat "$DIR/etc/dbpass")

    # Already up with the same configuration: nothing to do. Otherwise (partly up, unhealthy, or the
    # templates changed): restart.
    if all_running; then
        choose_ports keep
        rm -rf "$DIR/etc.new" && mkdir -p "$DIR/etc.new" && render_configs "$DIR/etc.new"
        if diff -rq -x dbpass "$DIR/etc.new" "$DIR/etc" >/dev/null 2>&1; then
            rm -rf "$DIR/etc.new"
            if sinfo_idle && acct_ok; then
                write_env
                log "already running ($DIR); client env: . $DIR/env"
                cat "$DIR/env"
                return 0
            fi
            log "running but nodes or accounting not healthy: restarting"
        else
            rm -rf "$DIR/etc.new"
            log "configuration changed: restarting"
        fi
    fi
    if any_running; then log "stopping what runs"; cmd_stop; fi

    local t0=$SECONDS
    mkdir -p "$DIR"/{etc,run,log,state/ctld,munge,mysql}
    for b in "${NODES[@]}"; do mkdir -p "$DIR/state/$b"; done
    choose_ports
    render_configs "$DIR/etc"

    phase "start: configs rendered"
    # 1. the mount namespace, held by `sleep infinity`, with the private /etc/hosts bind-mounted.
    rm -f "$DIR/run/ns.pid"
    setsid unshare --mount --propagation private -- sh -c \
        'mount --bind "$1" /etc/hosts && echo $$ >"$2" && exec sleep infinity' \
        sh "$DIR/etc/hosts" "$DIR/run/ns.pid" </dev/null >>"$DIR/log/namespace.log" 2>&1 &
    wait_for 10 "mount namespace (unshare + bind mount of /etc/hosts)" "$DIR/log/namespace.log" \
        alive "$DIR/run/ns.pid" sleep
    NSPID=$(pidof_file "$DIR/run/ns.pid")
    [ "$(readlink "/proc/$NSPID/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] ||
        die "unshare did not create a new mount namespace (log: $DIR/log/namespace.log)"
    readlink "/proc/$NSPID/ns/mnt" >"$DIR/run/ns.mnt"

    phase "namespace up"
    # 2. munged: private key and socket.
    if [ ! -s "$DIR/munge/munge.key" ]; then
        mungekey --create --keyfile="$DIR/munge/munge.key" >>"$DIR/log/munged.log" 2>&1 ||
            die "mungekey failed (log: $DIR/log/munged.log)"
    fi
    chown -R munge:munge "$DIR/munge"
    chmod 755 "$DIR/munge"
    chmod 400 "$DIR/munge/munge.key"
    rm -f "$DIR/munge/munge.socket" "$DIR/munge/munge.socket.lock"
    touch "$DIR/log/munged.log" "$DIR/run/munged.pid"
    chown munge:munge "$DIR/log/munged.log" "$DIR/run/munged.pid"
    inns runuser -u munge -- munged --socket="$DIR/munge/munge.socket" \
        --key-file="$DIR/munge/munge.key" --log-file="$DIR/log/munged.log" \
        --pid-file="$DIR/run/munged.pid" --seed-file="$DIR/munge/munged.seed" </dev/null >>"$DIR/log/munged.log" 2>&1 ||
        die "munged failed to start (log: $DIR/log/munged.log)"
    wait_for 10 munged "$DIR/log/munged.log" sh -c \
        "munge -n -S '$DIR/munge/munge.socket' | unmunge -S '$DIR/munge/munge.socket'"

    phase "munged up"
    # 3. MariaDB: own datadir, 127.0.0.1 only.
    local dbflags=(--no-defaults --user=root --datadir="$DIR/mysql" --innodb-buffer-pool-size=32M
        --innodb-log-file-size=16M --skip-log-bin --skip-name-resolve)
    if [ ! -d "$DIR/mysql/mysql" ]; then
        mariadb-install-db "${dbflags[@]}" --auth-root-authentication-method=socket --skip-test-db \
            >"$DIR/log/mariadb-install.log" 2>&1 ||
            die "mariadb-install-db failed (log: $DIR/log/mariadb-install.log)"
    fi
    rm -f "$DIR/run/mysql.sock"
    nsenter -t "$NSPID" -m -- setsid mariadbd "${dbflags[@]}" --bind-address=127.0.0.1 --port="$DB_PORT" \
        --socket="$DIR/run/mysql.sock" --pid-file="$DIR/run/mariadb.pid" --log-error="$DIR/log/mariadb.log" \
        </dev/null >>"$DIR/log/mariadb.log" 2>&1 &
    wait_for 60 "MariaDB" "$DIR/log/mariadb.log" \
        mariadb-admin --no-defaults --socket="$DIR/run/mysql.sock" -u root ping
    mariadb --no-defaults --socket="$DIR/run/mysql.sock" -u root -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
        ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" >>"$DIR/log/mariadb.log" 2>&1 ||
        die "creating the MariaDB user for slurmdbd failed (log: $DIR/log/mariadb.log)"

    phase "MariaDB up"
    # 4. slurmdbd (reads slurmdbd.conf beside $SLURM_CONF), then the cluster/account/user records.
    inns slurmdbd </dev/null >>"$DIR/log/slurmdbd.log" 2>&1 || die "slurmdbd failed to start (log: $DIR/log/slurmdbd.log)"
    wait_for 30 slurmdbd "$DIR/log/slurmdbd.log" env SLURM_CONF="$CONF" sacctmgr -n list cluster
    local sam=(timeout 20 env SLURM_CONF="$CONF" sacctmgr -i)
    if ! "${sam[@]}" -n -P list cluster format=cluster | grep -qx hpcgan; then
        "${sam[@]}" add cluster hpcgan >>"$DIR/log/sacctmgr.log" 2>&1 ||
            die "sacctmgr add cluster failed (log: $DIR/log/sacctmgr.log)"
    fi
    if ! "${sam[@]}" -n -P list account format=account | grep -qx hpcgan; then
        "${sam[@]}" add account hpcgan cluster=hpcgan description=hpcgan organization=hpcgan \
            >>"$DIR/log/sacctmgr.log" 2>&1 || die "sacctmgr add account failed (log: $DIR/log/sacctmgr.log)"
    fi
    local u
    for u in root ${SUDO_USER:-}; do
        if ! "${sam[@]}" -n -P list user "$u" format=user | grep -qx "$u"; then
            "${sam[@]}" add user "$u" account=hpcgan defaultaccount=hpcgan cluster=hpcgan \
                >>"$DIR/log/sacctmgr.log" 2>&1 || die "sacctmgr add user $u failed (log: $DIR/log/sacctmgr.log)"
        fi
    done

    phase "slurmdbd up, accounting records done"
    # 5. slurmctld and one slurmd per node.
    inns slurmctld </dev/null >>"$DIR/log/slurmctld.log" 2>&1 || die "slurmctld failed to start (log: $DIR/log/slurmctld.log)"
    wait_for 20 slurmctld "$DIR/log/slurmctld.log" env SLURM_CONF="$CONF" scontrol ping
    local n
    for n in "${NODES[@]}"; do
        inns slurmd -N "$n" </dev/null >>"$DIR/log/slurmd.$n.log" 2>&1 ||
            die "slurmd -N $n failed to start (log: $DIR/log/slurmd.$n.log)"
    done
    phase "slurmctld, slurmd started"
    wait_for 30 "nodes ${NODES[*]} (sinfo idle)" "$DIR/log/slurmctld.log" nodes_up
    phase "nodes idle"
    wait_for 20 "accounting (sacct)" "$DIR/log/slurmdbd.log" acct_ok
    phase "sacct works: up"

    write_env
    log "up in $((SECONDS - t0))s ($DIR); client env: . $DIR/env"
    cat "$DIR/env"
}

# ---------------------------------------------------------------------------------------- stop
term_wave() {  # term_wave NAME...: SIGTERM these daemons together, wait, SIGKILL what is left
    local name pf comm i busy
    local -a sel=()
    while IFS='|' read -r name pf comm; do
        [[ " $* " == *" $name "* ]] || continue
        alive "$pf" "$comm" || continue
        sel+=("$pf|$comm|$(pidof_file "$pf")")
        kill -TERM "$(pidof_file "$pf")" 2>/dev/null || true
    done < <(daemons)
    for ((i = 0; i < 75; i++)); do
        busy=0
        for name in "${sel[@]}"; do IFS='|' read -r pf comm _ <<<"$name"; alive "$pf" "$comm" && busy=1; done
        [ $busy = 0 ] && return 0
        sleep 0.2
    done
    for name in "${sel[@]}"; do
        IFS='|' read -r pf comm i <<<"$name"
        alive "$pf" "$comm" && kill -KILL "$i" 2>/dev/null || true
    done
}

cmd_stop() {
    export PATH=$PATH:/usr/sbin:/sbin
    local i left
    # Cancel jobs first, so a later start does not bring them back (best effort, only if ctld is up).
    if alive "$DIR/run/slurmctld.pid" slurmctld; then
        SLURM_CONF=$CONF timeout 5 scancel --full --quiet --user=root >/dev/null 2>&1 || true
        if [ -n "${SUDO_USER:-}" ]; then
            SLURM_CONF=$CONF timeout 5 scancel --full --quiet --user="$SUDO_USER" >/dev/null 2>&1 || true
        fi
    fi
    # SIGTERM the daemons in waves (nodes and controller, then slurmdbd, then MariaDB and munged, then
    # the namespace holder); each wave gets up to 15 s before SIGKILL.
    local nodes="" n
    for n in "${NODES[@]}"; do nodes+=" slurmd-$n"; done
    term_wave $nodes slurmctld
    term_wave slurmdbd
    term_wave mariadb munged
    term_wave namespace
    # Then everything still in the cluster's mount namespace: slurmstepd and job processes.
    if [ -s "$DIR/run/ns.mnt" ]; then
        local ns self p
        ns=$(cat "$DIR/run/ns.mnt") self=$(readlink /proc/self/ns/mnt)
        if [ -n "$ns" ] && [ "$ns" != "$self" ]; then
            for ((i = 0; i < 3; i++)); do
                left=0
                for p in /proc/[0-9]*; do
                    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] || continue
                    [ "$(cut -d' ' -f3 "$p/stat" 2>/dev/null)" != Z ] || continue  # zombie: init reaps it
                    kill -KILL "${p#/proc/}" 2>/dev/null || true
                    left=1
                done
                [ $left = 0 ] && break
                sleep 0.3
            done
        fi
        rm -f "$DIR/run/ns.mnt"
    fi
    rm -f "$DIR"/run/*.pid "$DIR/run/mysql.sock" "$DIR/munge/munge.socket"
    log "stopped ($DIR)"
}

# ---------------------------------------------------------------------------------------- status
cmd_status() {
    export PATH=$PATH:/usr/sbin:/sbin
    local name pf comm down=() rc=0
    [ -s "$CONF" ] || { echo "local-cluster: not started ($DIR has no etc/slurm.conf)"; return 1; }
    while IFS='|' read -r name pf comm; do alive "$pf" "$comm" || down+=("$name"); done < <(daemons)
    SLURM_CONF=$CONF sinfo 2>&1 || rc=1
    if acct_ok; then echo "accounting: ok (sacct works)"; else echo "accounting: NOT working"; rc=1; fi
    if [ ${#down[@]} -gt 0 ]; then echo "not running: ${down[*]} (logs: $DIR/log)"; rc=1; fi
    sinfo_idle || { echo "nodes: not all up"; rc=1; }
    [ $rc = 0 ] && echo "cluster: up; client env: . $DIR/env" || echo "cluster: DOWN"
    return $rc
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    env) [ -s "$DIR/env" ] || die "no $DIR/env: run start first"; cat "$DIR/env" ;;
    *) echo "usage: $0 install|start|stop|restart|status|env   (state dir: \$HPCGAN_SLURM_DIR, default /tmp/hpcgan-slurm)" >&2; exit 2 ;;
esac
