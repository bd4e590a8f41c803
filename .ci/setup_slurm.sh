#!/usr/bin/env bash
# A real single-node SLURM on this machine, for tests/test_slurm.py and .ci/run.
#
# Installs Debian's SLURM (controller, node daemon, client, accounting daemon), MUNGE and
# MariaDB; writes a one-node configuration (this host, its real CPUs and memory, one
# partition named `gpu`, two placeholder `gpu` GRES so that a job's GPU request is scheduled
# as on a GPU node; the jobs themselves run on the CPU); starts munged, MariaDB, slurmdbd,
# slurmctld and slurmd; waits until the node is idle and `sacct` answers (submitit polls
# job states with sacct, which needs the accounting daemon).
#
# Idempotent: when the daemons already run with this configuration it only checks them.
# Needs root (or password-less sudo). Exit status: 0 when SLURM is up, 1 with the daemons'
# logs on stderr otherwise. See docs/cluster.md.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n -E bash "$0" "$@"
    fi
    echo "setup_slurm: error: needs root (or password-less sudo) to install and start SLURM" >&2
    exit 1
fi

CONF=/etc/slurm
STATE=/var/lib/slurm
LOGS=/var/log/slurm
RUN=/run/slurm
DB_PASS=yieldmc-ci
NODE=$(hostname -s)

log() { echo "setup_slurm: $*" >&2; }

# One setup at a time (test workers may call this at once); the daemons do not inherit the lock.
exec 9>/run/yieldmc-setup-slurm.lock
flock -w 900 9 || { log "error: another setup_slurm.sh holds /run/yieldmc-setup-slurm.lock"; exit 1; }

fail() {
    log "error: $*"
    for f in "$LOGS"/slurmctld.log "$LOGS"/slurmd.log "$LOGS"/slurmdbd.log /var/log/munge/munged.log; do
        [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 25 "$f" >&2; }
    done
    command -v sinfo >/dev/null && { echo "--- sinfo" >&2; sinfo -N -l >&2 || true; }
    exit 1
}

# --- packages ------------------------------------------------------------------------
need=()
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client slurmdbd:slurmdbd \
            munged:munge mariadbd:mariadb-server; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || fail "apt-get update failed"
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client slurmdbd munge mariadb-server >/dev/null \
        || fail "apt-get install ${need[*]} failed"
fi

mkdir -p "$CONF" "$STATE/slurmctld" "$STATE/slurmd" "$LOGS" "$RUN"

# --- MUNGE (authentication between the daemons and the commands) -----------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged --force 9>&- || fail "munged did not start"
    for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
    munge -n | unmunge >/dev/null || fail "munge does not answer"
fi

# --- MariaDB (slurmdbd's storage) --------------------------------------------------------
if ! mysqladmin ping --silent >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    setsid mysqld_safe --user=mysql >/dev/null 2>&1 </dev/null 9>&- &
    for _ in $(seq 60); do mysqladmin ping --silent >/dev/null 2>&1 && break; sleep 0.5; done
    mysqladmin ping --silent >/dev/null 2>&1 || fail "MariaDB did not start"
fi
mysql -u root <<SQL || fail "cannot create the slurm database user"
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

# --- configuration -------------------------------------------------------------------
# This host as `slurmd -C` sees it (CPUs, sockets, cores, memory), keeping some memory back;
# the daemons talk over 127.0.0.1, whether or not the host name resolves.
node_line=$(slurmd -C | head -n 1)
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
node_line=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 9 / 10))/" <<<"$node_line")

new_conf=$(mktemp)
cat >"$new_conf" <<EOF
# Written by .ci/setup_slurm.sh: one node, for tests (see docs/cluster.md).
ClusterName=yieldmc
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
# Look at pending jobs every 5 s (default 60): a requeued job starts again soon after cred_expire.
SchedulerParameters=sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
JobRequeue=1
# A requeued job waits cred_expire seconds before it starts again (default 120).
AuthInfo=cred_expire=10
KillWait=30
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$node_line NodeAddr=127.0.0.1 Gres=gpu:2 State=UNKNOWN
PartitionName=gpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
# SLURM drops GPUs without device files; /dev/null and /dev/zero stand in for two GPUs (no
# device is opened: TaskPlugin=task/none constrains nothing), so that a job asking for one
# GPU is scheduled as on a GPU node, two at a time.
printf 'NodeName=%s Name=gpu File=/dev/null,/dev/zero\n' "$NODE" >"$CONF/gres.conf.new"

cat >"$CONF/slurmdbd.conf.new" <<EOF
DbdHost=localhost
SlurmUser=root
AuthType=auth/munge
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$RUN/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
EOF
chmod 600 "$CONF/slurmdbd.conf.new"

up() { sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)' && sacct -n -X >/dev/null 2>&1; }

if cmp -s "$new_conf" "$CONF/slurm.conf" && cmp -s "$CONF/gres.conf.new" "$CONF/gres.conf" && up; then
    rm -f "$new_conf" "$CONF/gres.conf.new" "$CONF/slurmdbd.conf.new"
    log "SLURM is up (node $NODE, partition gpu)"
    exit 0
fi
mv "$new_conf" "$CONF/slurm.conf" && chmod 644 "$CONF/slurm.conf"
mv "$CONF/gres.conf.new" "$CONF/gres.conf"
mv "$CONF/slurmdbd.conf.new" "$CONF/slurmdbd.conf"

# --- daemons (stopped first by their pid files when the configuration changed) ---------
for d in slurmd slurmctld slurmdbd; do
    pid=$(cat "$RUN/$d.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
done

slurmdbd 9>&- || fail "slurmdbd did not start"
for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
sacctmgr -n list cluster >/dev/null 2>&1 || fail "slurmdbd does not answer"
sacctmgr -n -P list cluster format=cluster | grep -qx yieldmc \
    || sacctmgr -i add cluster yieldmc >/dev/null || fail "cannot register the cluster"
slurmctld 9>&- || fail "slurmctld did not start"
slurmd 9>&- || fail "slurmd did not start"

for _ in $(seq 90); do up && break; sleep 1; done
up || fail "the node did not become idle, or sacct does not answer"
scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
log "SLURM is up (node $NODE, partition gpu): $(sinfo -h -o '%P %D %c CPUs %m MB %G %T')"
