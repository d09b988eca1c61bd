#!/usr/bin/env bash
# Checks that the local cluster does what the tests rely on (about 100 s; needs an idle cluster):
#   1. srun -N2 -n4 spreads over n1,n2, and the node names resolve inside jobs (getent, python)
#   2. sacct reads job states from real accounting
#   3. scontrol requeue: the job runs again with SLURM_RESTART_COUNT=1; sacct shows REQUEUED
#   4. preemption: a `high` job requeues a --requeue job in `low`; the low job's tasks get SIGUSR2,
#      it runs again with SLURM_RESTART_COUNT=1; sacct shows PREEMPTED
#   5. --time=1 --signal=USR2@20: the task gets SIGUSR2 within 15-55 s
# Usage: slurm/cluster/verify.sh   (state dir: $HPCGAN_SLURM_DIR, default /tmp/hpcgan-slurm)
set -uo pipefail
DIR=${HPCGAN_SLURM_DIR:-/tmp/hpcgan-slurm}
[ -s "$DIR/env" ] || { echo "verify: no $DIR/env: run local-cluster.sh start first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$DIR/env"
W=$DIR/verify
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
OK=0 BAD=0
ok() { echo "ok:   $*"; OK=$((OK + 1)); }
bad() { echo "FAIL: $*"; BAD=$((BAD + 1)); }
# wait_state JOB SECONDS PATTERN: until `sacct` shows a line of JOB matching PATTERN
wait_sacct() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ]; do
        sacct -n -X -D -j "$1" -o State 2>/dev/null | grep -qE "$3" && return 0
        sleep 1
    done
    return 1
}
wait_done() {  # wait_done JOB SECONDS: until squeue no longer lists JOB
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ]; do [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0; sleep 1; done
    return 1
}

# The task used by the signal checks: logs signals with seconds since T0 (set by the batch script).
cat >task.sh <<'EOF'
#!/bin/bash
say() { echo "$(date +%T) task$SLURM_PROCID@$SLURMD_NODENAME restart=${SLURM_RESTART_COUNT:-0} $* t=$(( $(date +%s) - T0 ))s"; }
trap 'say got-SIGUSR2' USR2
trap 'say got-SIGTERM; exit 143' TERM
say start
for ((i = 0; i < ${SECS:-600}; i++)); do sleep 1; done
say end
EOF
chmod +x task.sh

# 5 (submitted first, runs in parallel on n3): time limit with --signal=USR2@20.
TL=$(sbatch --parsable -p high -w n3 -n1 --time=1 --signal=USR2@20 -o tl.out \
    --wrap "export T0=\$(date +%s); srun $W/task.sh")

# 1. srun over two nodes; names resolve inside the job.
out=$(timeout 60 srun -p high -N2 -n4 -w n1,n2 bash -c \
    'echo $SLURM_NODEID $SLURM_PROCID $SLURMD_NODENAME $(getent hosts n1 | cut -d" " -f1)' 2>srun.err | sort)
echo "$out" | sed 's/^/      /'
if [ "$(echo "$out" | awk '{print $3}' | sort -u | tr '\n' ' ')" = "n1 n2 " ] &&
    [ "$(echo "$out" | grep -c ' 127.0.0.1$')" = 4 ]; then ok "srun -N2 -n4 on n1,n2; n1 resolves in the job"
else bad "srun -N2 -n4: $out $(cat srun.err)"; fi
py=$(timeout 60 srun -p high -N1 -n1 -w n2 python3 -c "import socket; print(socket.gethostbyname('n1'))" 2>>srun.err)
[ "$py" = 127.0.0.1 ] && ok "python socket.gethostbyname('n1') in a job: $py" || bad "gethostbyname in a job: $py"

# 2. accounting.
J=$(sbatch --parsable -p high -w n1 -n1 -o /dev/null --wrap true)
if wait_sacct "$J" 30 COMPLETED; then ok "sacct -j $J: $(sacct -n -X -j "$J" -o State | xargs)"
else bad "sacct -j $J never showed COMPLETED ($(sacct -n -X -j "$J" -o State 2>&1 | xargs))"; fi

# 3. scontrol requeue.
RQ=$(sbatch --parsable -p high -w n2 -n1 --requeue -o rq.out --open-mode=append --wrap \
    'echo "restart=${SLURM_RESTART_COUNT:-0}"; [ "${SLURM_RESTART_COUNT:-0}" = 0 ] && { scontrol requeue $SLURM_JOB_ID; sleep 60; }; true')
t0=$SECONDS
if wait_done "$RQ" 60 && grep -q restart=1 rq.out && wait_sacct "$RQ" 10 REQUEUED; then
    ok "scontrol requeue: ran again with SLURM_RESTART_COUNT=1 after $((SECONDS - t0))s; sacct: $(sacct -n -X -D -j "$RQ" -o State | xargs)"
else bad "scontrol requeue: $(tr '\n' ' ' <rq.out) sacct: $(sacct -n -X -D -j "$RQ" -o State | xargs)"; fi

# 4. preemption: low job on n1,n2 (all 4 CPUs), then a high job that needs n1.
LOW=$(sbatch --parsable -p low -w n1,n2 -N2 --ntasks-per-node=2 --requeue --signal=USR2@20 --time=10 \
    -o low.out --open-mode=append --wrap "export T0=\$(date +%s) SECS=25; srun $W/task.sh")
end=$((SECONDS + 30))
until [ "$(squeue -h -j "$LOW" -o %T)" = RUNNING ] || [ $SECONDS -ge $end ]; do sleep 1; done
sleep 3
t0=$SECONDS
sbatch -Q -p high -w n1 -n2 -o high.out --wrap 'echo high on $SLURMD_NODENAME; sleep 3'
end=$((SECONDS + 90))
until grep -q 'restart=1 start' low.out 2>/dev/null || [ $SECONDS -ge $end ]; do sleep 1; done
cycle=$((SECONDS - t0))
wait_sacct "$LOW" 10 PREEMPTED
states=$(sacct -n -X -D -j "$LOW" -o State | xargs)
if grep -q 'restart=0 got-SIGUSR2' low.out && grep -q 'restart=1 start' low.out && [[ $states == *PREEMPTED* ]]; then
    ok "preemption: low job got SIGUSR2, requeued, running again (restart=1) ${cycle}s after the high job was submitted; sacct: $states"
else bad "preemption: sacct: $states; log: $(tr '\n' ' ' <low.out)"; fi
grep -E 'got-|start' low.out | sed 's/^/      /'
scancel "$LOW" 2>/dev/null

# 5. (continued) the time-limit signal.
wait_done "$TL" 120
usr2=$(grep -o 'got-SIGUSR2 t=[0-9]*s' tl.out | head -1)
t=${usr2##*t=}; t=${t%s}
if [ -n "$t" ] && [ "$t" -ge 15 ] && [ "$t" -le 55 ]; then ok "--time=1 --signal=USR2@20: SIGUSR2 after ${t}s; sacct: $(sacct -n -X -j "$TL" -o State | xargs)"
else bad "--time=1 --signal=USR2@20: $(tr '\n' ' ' <tl.out)"; fi

echo "verify: $OK ok, $BAD failed (job logs in $W)"
[ $BAD = 0 ]
