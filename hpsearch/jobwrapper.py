"""The one job wrapper: the shell function every backend runs a command through.

The local backend runs it as ``/bin/sh -c '<RUN_FUNCTION>hpsearch_run "$@"' hpsearch-run
<run_dir> <launch> <job> <host> <cwd> <argv...>``; the Slurm and LSF job scripts paste
:data:`RUN_FUNCTION` in (template variable ``run_function``) and call ``hpsearch_run`` with
the same arguments. The run's argv reaches it only as positional parameters, so no grid
value is ever read by a shell. It writes the two files of :mod:`hpsearch.runfiles`:

* ``started_at`` before the command (``launch=``, ``job=`` -- ``<host>:<pid>`` when the job
  argument is empty --, ``host=``, ``cuda_visible_devices=``), and
* ``exit_code`` (``"<status> <launch>"``) after it,

both with one ``printf`` each (a builtin: the wrapper forks nothing but the command). While
the command runs, SIGTERM, SIGINT and SIGHUP to the wrapper are held until the command ends,
so that a command stopped by a signal to its process group (the local backend signals the
whole group) still gets its exit status recorded; a command that ignores them is ended
with SIGKILL by whoever signalled it, and then no exit status is written.
"""

from __future__ import annotations

#: POSIX sh; $1 run dir, $2 launch key, $3 job id ('' = host:pid), $4 host, $5 cwd, then argv
RUN_FUNCTION = r"""hpsearch_run() {
    hps_d=$1 hps_launch=$2 hps_job=$3 hps_host=$4 hps_cwd=$5
    shift 5
    [ -n "$hps_job" ] || hps_job="$hps_host:$$"
    printf 'launch=%s\njob=%s\nhost=%s\ncuda_visible_devices=%s\n' "$hps_launch" \
        "$hps_job" "$hps_host" "${CUDA_VISIBLE_DEVICES-}" > "$hps_d/started_at"
    trap : TERM INT HUP
    if cd "$hps_cwd"; then
        "$@" > "$hps_d/stdout.log" 2> "$hps_d/stderr.log" < /dev/null
        hps_status=$?
    else
        hps_status=126
    fi
    printf '%s %s\n' "$hps_status" "$hps_launch" > "$hps_d/exit_code"
    return "$hps_status"
}
"""

#: the name the local wrapper runs under ($0), how a restarted driver recognises it
LOCAL_NAME = "hpsearch-run"
LOCAL_SCRIPT = RUN_FUNCTION + 'hpsearch_run "$@"\n'


def local_argv(run_dir: str, launch: str, host: str, cwd: str, argv: list[str]) -> list[str]:
    """The argv that runs ``argv`` through the wrapper on this machine."""
    return ["/bin/sh", "-c", LOCAL_SCRIPT, LOCAL_NAME, run_dir, launch, "", host, cwd, *argv]


def wrapper_run_dir(cmdline: bytes) -> str | None:
    """The run directory of a wrapper process, from its ``/proc/<pid>/cmdline``.

    A local wrapper's command line reads ``/bin/sh\\0-c\\0<script>\\0hpsearch-run\\0<run_dir>
    \\0<launch>\\0...``; None for any other process.
    """
    parts = cmdline.split(b"\0")
    if len(parts) > 5 and parts[0] == b"/bin/sh" and parts[3] == LOCAL_NAME.encode():
        return parts[4].decode(errors="replace")
    return None
