"""The one job wrapper: the shell function every backend runs a command through.

The local backend (and the packed worker inside a cluster job) runs it as ``/bin/sh -c
'<RUN_FUNCTION>hpsearch_run "$@"' hpsearch-run <run_dir> <launch> <job> <host> <cwd>
<argv...>``; the Slurm and LSF job scripts paste :data:`RUN_FUNCTION` and
:data:`TASK_FUNCTION` in (template variables ``run_function``, ``task_function``) and call
``hpsearch_task`` with the same arguments. The run's argv reaches it only as positional
parameters, so no grid value is ever read by a shell. It writes the two files of
:mod:`hpsearch.runs.files`:

* ``started_at`` before the command (``launch=``, ``job=`` -- ``<host>:<pid>`` when the job
  argument is empty --, ``host=``, ``cuda_visible_devices=``, ``cpus=`` -- the job's CPUs, as
  the cluster job scripts export them in ``HPSEARCH_CPUS``), and
* ``exit_code`` (``"<status> <launch>"``, and `` <signal>`` when the wrapper got SIGTERM,
  SIGINT or SIGHUP while the command ran) after it,

both with one ``printf`` each (a builtin: the wrapper forks nothing but the command). Before
the command it gives the run :data:`TRACKING_DEFAULTS` (``WANDB_RUN_GROUP``, ``WANDB_NAME``,
``MLFLOW_EXPERIMENT_NAME``, ...) where its environment leaves them unset: the wrapper is
where a run's environment is final on every backend (a cluster job's setup lines included). A
write that fails (a full disk) says nothing on the wrapper's stderr (the user's terminal,
for a local run); a failed ``exit_code`` is noted at the end of ``stderr.log`` when that
can be written, and the wrapper ends with the command's status all the same: the backend
knows a wrapper that ended on its own without an exit file could not write it. While
the command runs, SIGTERM, SIGINT and SIGHUP to the wrapper are held until the command ends,
so that a command stopped by a signal to its process group (the local backend signals the
whole group) still gets its exit status recorded; a command that ignores them is ended
with SIGKILL by whoever signalled it, and then no exit status is written.

**A requeued job starts the same launch again** (Slurm's ``scontrol requeue`` and
preemption with requeue, LSF's ``brequeue``): the wrapper then finds ``started_at`` of this
launch (``launch=k3f9a1c2``, or ``k3f9a1c2.<r>`` after r restarts). Unless that start's
``exit_code`` says it ended on its own (no signal word: the job was requeued after the
command was done; nothing runs again), it moves that start's files to
``attempts/<n>/`` (mkdir and mv: the only forks besides the command, and only then), runs
the command as launch ``k3f9a1c2.<r+1>`` with ``HPSEARCH_ATTEMPT`` raised by r+1 and
``HPSEARCH_RESUMED=1``. The sim's own output directory is left as it is: its checkpoint.
"""

from __future__ import annotations

from hpsearch.runs.files import ATTEMPT_FILES, ATTEMPTS_DIR, EXIT_FILE, STARTED_FILE, WARNING_FILE

#: the variable naming the search (its directory's name), which the driver sets for every run
SEARCH_VARIABLE = "HPSEARCH_SEARCH"
#: what a run's tracking library reads to group and name it, with the value the wrapper gives
#: when the run's environment (the driver's, a job's setup lines) does not set it already:
#: ``wandb.init()`` and ``mlflow.start_run()`` then file the run under its search, unedited
TRACKING_DEFAULTS = (
    ("WANDB_RUN_GROUP", f"${SEARCH_VARIABLE}"), ("WANDB_NAME", "$HPSEARCH_RUN_ID"),
    ("WANDB_JOB_TYPE", "hpsearch"), ("MLFLOW_EXPERIMENT_NAME", f"${SEARCH_VARIABLE}"),
    ("MLFLOW_RUN_NAME", "$HPSEARCH_RUN_ID"))


def tracking_defaults(env: dict[str, str]) -> dict[str, str]:
    """``env`` with :data:`TRACKING_DEFAULTS` given where it leaves them unset, as the
    shell wrapper gives them (for a run forked by :mod:`hpsearch.runs.zygote`)."""
    if not env.get(SEARCH_VARIABLE):
        return env
    given = {name: env.get(value[1:], "") if value.startswith("$") else value
             for name, value in TRACKING_DEFAULTS}
    return {**given, **env}


def _tracking_lines() -> str:
    """sh lines giving :data:`TRACKING_DEFAULTS` to a variable that is unset (a variable set
    empty stays empty: the user set it), when the driver named the search."""
    names = " ".join(name for name, _ in TRACKING_DEFAULTS)
    defaults = " ".join(f'"${{{name}={value}}}"' for name, value in TRACKING_DEFAULTS)
    return (f'    if [ -n "${{{SEARCH_VARIABLE}-}}" ]; then\n'
            f"        : {defaults}\n"
            f"        export {names}\n"
            "    fi")


#: POSIX sh; $1 run dir, $2 launch key, $3 job id ('' = host:pid), $4 host, $5 cwd, then argv
RUN_FUNCTION = r"""hpsearch_run() {
    hps_d=$1 hps_launch=$2 hps_job=$3 hps_host=$4 hps_cwd=$5
    shift 5
    [ -n "$hps_job" ] || hps_job="$hps_host:$$"
    if [ -f "$hps_d/@STARTED@" ]; then
        hps_prev=
        while IFS='=' read -r hps_k hps_v; do
            [ "$hps_k" != launch ] || hps_prev=$hps_v
        done < "$hps_d/@STARTED@"
        case $hps_prev in
            "$hps_launch") hps_r=1 ;;
            "$hps_launch".*) hps_r=$(( ${hps_prev#"$hps_launch".} + 1 )) ;;
            *) hps_r=0 ;;
        esac
        if [ "$hps_r" -gt 0 ]; then
            hps_sig=none
            [ ! -f "$hps_d/@EXIT@" ] || read -r hps_status hps_k hps_sig < "$hps_d/@EXIT@"
            if [ -z "$hps_sig" ] && [ "$hps_k" = "$hps_prev" ]; then
                return "$hps_status"
            fi
            hps_n=1
            while [ -e "$hps_d/@ATTEMPTS@/$hps_n" ]; do hps_n=$((hps_n + 1)); done
            mkdir -p "$hps_d/@ATTEMPTS@/$hps_n" || return 126
            for hps_f in @ATTEMPT_FILES@; do
                [ ! -e "$hps_d/$hps_f" ] || mv "$hps_d/$hps_f" "$hps_d/@ATTEMPTS@/$hps_n/"
            done
            hps_launch=$hps_launch.$hps_r
            HPSEARCH_ATTEMPT=$(( ${HPSEARCH_ATTEMPT:-1} + hps_r ))
            HPSEARCH_RESUMED=1
            export HPSEARCH_ATTEMPT HPSEARCH_RESUMED
        fi
    fi
@TRACKING@
    printf 'launch=%s\njob=%s\nhost=%s\ncuda_visible_devices=%s\ncpus=%s\n' "$hps_launch" \
        "$hps_job" "$hps_host" "${CUDA_VISIBLE_DEVICES-}" "${HPSEARCH_CPUS-}" \
        2>/dev/null > "$hps_d/@STARTED@"
    hps_sig=
    trap 'hps_sig=${hps_sig:-TERM}' TERM
    trap 'hps_sig=${hps_sig:-INT}' INT
    trap 'hps_sig=${hps_sig:-HUP}' HUP
    if cd "$hps_cwd"; then
        "$@" > "$hps_d/stdout.log" 2> "$hps_d/stderr.log" < /dev/null
        hps_status=$?
    else
        hps_status=126
    fi
    printf '%s %s%s\n' "$hps_status" "$hps_launch" "${hps_sig:+ $hps_sig}" \
        2>/dev/null > "$hps_d/@EXIT@" || printf 'hpsearch-run: cannot write %s\n' \
        "$hps_d/@EXIT@" 2>/dev/null >> "$hps_d/stderr.log"
    return "$hps_status"
}
""".replace("@TRACKING@", _tracking_lines()).replace("@STARTED@", STARTED_FILE).replace(
    "@EXIT@", EXIT_FILE).replace("@ATTEMPTS@", ATTEMPTS_DIR).replace(
    "@ATTEMPT_FILES@", " ".join(ATTEMPT_FILES))

#: POSIX sh, for the cluster job scripts: ``hpsearch_task`` takes hpsearch_run's arguments and
#: runs it in the background, so that the job's time-limit warning (SIGURG: Slurm's
#: ``--signal=B:URG@<s>`` reaches the batch shell, LSF's ``-wa URG`` every process of the job,
#: which all ignore it by default) is noted in ``walltime_warning`` and passed on to the run
#: as SIGTERM, its process group's (the wrapper holds it, the command gets it). A background
#: command of a shell without job control ignores SIGQUIT (and, under dash, SIGINT); the
#: schedulers end jobs with SIGTERM.
TASK_FUNCTION = r"""hpsearch_task() {
    hps_task_dir=$1 hps_task_launch=$2
    trap 'printf "%s\n" "$hps_task_launch" > "$hps_task_dir/@WARNING@"; kill -s TERM 0' URG
    trap : TERM INT HUP
    hpsearch_run "$@" &
    hps_task_pid=$!
    while :; do
        wait "$hps_task_pid"
        hps_task_status=$?
        kill -0 "$hps_task_pid" 2>/dev/null || return "$hps_task_status"
    done
}
""".replace("@WARNING@", WARNING_FILE)

#: the name the local wrapper runs under ($0), how a restarted driver recognises it
LOCAL_NAME = "hpsearch-run"
LOCAL_SCRIPT = RUN_FUNCTION + 'hpsearch_run "$@"\n'


def local_argv(run_dir: str, launch: str, host: str, cwd: str, argv: list[str],
               job: str = "") -> list[str]:
    """The argv that runs ``argv`` through the wrapper on this machine; ``job`` is what
    ``started_at`` names as the job (default ``<host>:<pid>``; the packed worker gives its
    cluster job's id)."""
    return ["/bin/sh", "-c", LOCAL_SCRIPT, LOCAL_NAME, run_dir, launch, job, host, cwd, *argv]


def wrapper_run_dir(cmdline: bytes) -> str | None:
    """The run directory of a wrapper process, from its ``/proc/<pid>/cmdline``.

    A local wrapper's command line reads ``/bin/sh\\0-c\\0<script>\\0hpsearch-run\\0<run_dir>
    \\0<launch>\\0...``; None for any other process.
    """
    parts = cmdline.split(b"\0")
    if len(parts) > 5 and parts[0] == b"/bin/sh" and parts[3] == LOCAL_NAME.encode():
        return parts[4].decode(errors="replace")
    return None
