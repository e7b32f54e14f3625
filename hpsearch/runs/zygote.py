"""The zygote: a process that imported a run's Python code once and forks every run from it.

The driver's side is :mod:`hpsearch.runs.preload`; this module is the process itself::

    <python> -m hpsearch.runs.zygote <driver pid> function train.py:my_objective
    <python> -m hpsearch.runs.zygote <driver pid> script train.py
    <python> -m hpsearch.runs.zygote - function train.py:my_objective      (on an SSH host)

started in the runs' working directory. It imports what the runs need -- a function
objective's file (as :mod:`hpsearch.runs.objective_runner` would), or the modules a script
imports at its top level (read with :mod:`ast`; the script itself is not run) -- and then
answers on its stdout, one JSON line each::

    {"ready": 4242, "rss_mib": 412.5}          imported; fork requests are welcome
    {"fallback": "importing train.py initialised CUDA (torch.cuda.is_initialized())"}

With a driver pid it ends itself when its driver ends (``PR_SET_PDEATHSIG``: even a ``kill
-9`` of the driver; its runs go on, as runs outlive a killed driver) or closes its stdin (it
then waits for its runs to end, telling their statuses, and exits). Each line on its stdin
asks for one run::

    {"run_dir": ..., "launch": "k3f9a1c2", "job": "", "host": "node1", "cwd": ...,
     "argv": [<python>, "-m", "hpsearch.objective_runner", ...], "env": {...}}

and is answered ``{"pid": <wrapper pid>, "rss_mib": <its resident memory>}``; when that
wrapper ends, ``{"ended": <pid>, "status": <exit status, or -N for signal N>}`` follows.

**On an SSH host** (``-`` for the driver pid: :mod:`hpsearch.backends.ssh.zygotes` starts it
over ssh) its stdin is the ssh channel: it ends as soon as that closes (the driver retired
it, or ended, even by ``kill -9``: its ssh client's end closes the channel), leaving its runs
be; it tells no ends (the driver reads them from the runs' exit files), and a request's
``env`` is what the run gets on top of the zygote's own environment (the host's), not the
whole of it.

**A run is two forks.** The first child plays the job wrapper (:mod:`hpsearch.runs.wrapper`):
a new session (its pid is the run's process group and job id ``<host>:<pid>``), named
``hpsearch-run`` (``/proc/<pid>/comm``) and sitting in the run directory (``/proc/<pid>/cwd``),
which is how a restarted driver recognises it. It writes ``started_at``, holds SIGTERM, SIGINT
and SIGHUP while the run runs, and writes ``exit_code`` exactly as the shell wrapper does
(128+N for a run killed by signal N, the signal word when the wrapper got one), including a
requeued launch's restart rules. The second child is the run: in ``cwd``, stdin from
``/dev/null``, ``stdout.log`` and ``stderr.log`` as its fds 1 and 2, the run's whole environment,
the default signal handlers, then the runner's ``main`` (function objectives) or
``runpy.run_path(script, run_name="__main__")`` with the script's ``sys.argv``. It ends as the
interpreter ends (threads joined, ``atexit`` handlers, open files flushed: :func:`_finish`)
but without tearing down every module, which takes seconds beside torch. Whatever the run does
-- a segfault, ``os._exit``, the OOM killer -- ends that process only.

**The zygote learns its runs' imports.** A run sends, through a pipe of its own, the names of
the modules it imported that the zygote lacks, except the user's (under the working directory
or the target's folder, which may change), one a line: while it imports (at an import at least
:data:`LESSON_EVERY` seconds after its last lines, the names it has imported since, as far as
the pipe takes them at once) and at its end (the rest). The zygote imports them as they come,
while the run goes on, saying ``{"learning": <count>}`` before and ``{"learned": <count>}``
after (the driver asks for no fork meanwhile; a fork asked for first is made first). So an
import inside the function (``torch.optim`` importing ``torch._dynamo`` on first use: two
seconds) is paid by the first runs only, and the zygote pays it beside them, not after.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import ctypes
import gc
import importlib
import importlib.util
import io
import json
import os
import runpy
import select
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from hpsearch.runs.files import (
    ATTEMPT_FILES,
    ATTEMPTS_DIR,
    EXIT_FILE,
    STARTED_FILE,
    STDERR_FILE,
    read_exit,
    read_start,
    split_launch,
    write_small,
)
from hpsearch.runs.wrapper import tracking_defaults
from hpsearch.spec.reserved import STDOUT_FILE

#: what a forked wrapper calls itself (``/proc/<pid>/comm``)
WRAPPER_NAME = "hpsearch-run"
#: set for the imports: PyTorch's fork-safe ``torch.cuda.is_available()``
_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
#: ``prctl`` options
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
#: the signals the wrapper holds while its run runs, by the word ``exit_code`` gives them
_HELD = {signal.SIGTERM: "TERM", signal.SIGINT: "INT", signal.SIGHUP: "HUP"}
#: seconds between a run's lessons while it imports
LESSON_EVERY = 0.2
#: the driver pid argument of a zygote on an SSH host (see the module docstring)
REMOTE = "-"
#: bytes a pipe takes whole or not at all (POSIX ``PIPE_BUF``): a lesson's lines are written in
#: pieces of at most this, so a full pipe cuts no line
_PIPE_BUF = 4096


def _prctl(option: int, value: Any) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def resident_mib() -> float:
    """This process's resident memory in MiB (``VmRSS`` of ``/proc/self/status``; 0 when
    unknown)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def script_imports(path: Path) -> list[str]:
    """The modules a script imports at its top level (``import torch``, ``from sklearn.datasets
    import load_digits`` -> ``sklearn.datasets``), in order; relative imports left out."""
    tree = ast.parse(path.read_bytes(), str(path))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return list(dict.fromkeys(names))


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    path = os.path.realpath(path)
    return any(path.startswith(folder + os.sep) for folder in folders)


def preload(kind: str, target: str, local: tuple[str, ...]) -> ModuleType | None:
    """Import what the runs of ``target`` need; the function objective's module, if any. A
    script's imports of the user's own modules (in the ``local`` folders, which may change
    during the search) are left to each run."""
    if kind == "function":
        from hpsearch.runs.objective_runner import import_target

        return import_target(target)
    path = Path(target).resolve()
    sys.path.insert(0, str(path.parent))
    for name in script_imports(path):
        with contextlib.suppress(Exception):  # the run will say so itself, as it would have
            found = importlib.util.find_spec(name)
            if found is not None and not _inside(found.origin or "", local):
                importlib.import_module(name)
    return None


def accelerator_in_use() -> str | None:
    """What accelerator runtime the imports initialised (a fork of this process could not
    use it), or None: CUDA through PyTorch, or a JAX backend."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    with contextlib.suppress(Exception):
        if cuda is not None and cuda.is_initialized():
            return "CUDA (torch.cuda.is_initialized())"
    if "jax" in sys.modules:
        with contextlib.suppress(Exception):
            from jax._src import xla_bridge  # type: ignore[import-not-found]

            if xla_bridge._backends:
                return "a JAX backend"
    return None


class Zygote:
    """The zygote's loop: fork requests in, pids and ends out (see the module docstring)."""

    def __init__(self, kind: str, module: ModuleType | None, reply_fd: int,
                 local: tuple[str, ...] = (), remote: bool = False) -> None:
        self.kind = kind
        self.remote = remote  # on an SSH host (see the module docstring)
        self.base_env = dict(os.environ) if remote else {}  # what a request's env tops
        self.module = module
        self.reply_fd = reply_fd
        self.local = local  # the user's folders: their modules are never learned
        self.children = 0
        self.accepting = True
        self.lessons: dict[int, bytes] = {}  # read end of a run's lesson pipe -> a cut line
        self.lesson_fd = -1  # in a run: the write end of its lesson pipe
        self.taught: set[str] = set()  # in a run: the modules its lessons named
        self.files: list[Any] = []  # the file objects the imports opened
        self.frozen = True  # every module imported so far is frozen (see freeze)
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.reply_fd, data):]

    def reap(self, block: bool = False) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                self.children = 0
                return
            if pid == 0:
                return
            self.children -= 1
            if not self.remote:
                self.send({"ended": pid, "status": os.waitstatus_to_exitcode(status)})

    def serve(self) -> None:
        """Fork a run for each request until stdin closes; then wait for the runs (on an
        SSH host: leave them be)."""
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wake-up fd fires
        signal.set_wakeup_fd(self.wake_write)
        pending = b""
        while self.accepting:
            readable, _, _ = select.select([0, self.wake_read, *self.lessons], [], [])
            if self.wake_read in readable:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_read, 512):
                        pass
                self.reap()
            if 0 in readable:  # before the lessons: a fork asked for never waits on them
                data = os.read(0, 1 << 16)
                if not data:
                    if self.remote:
                        return
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        self.fork(json.loads(line))
            for fd in readable:
                if fd in self.lessons and self.accepting:
                    self.read_lesson(fd)
        self.reap(block=True)

    def fork(self, request: dict[str, Any]) -> None:
        if not self.frozen:
            self.freeze()
        learn_read, learn_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(learn_read)
            self.lesson_fd = learn_write
            self._as_wrapper(request)
        os.close(learn_write)
        self.lessons[learn_read] = b""
        self.children += 1
        self.send({"pid": pid, "rss_mib": resident_mib()})

    def freeze(self) -> None:
        """Note the open file objects, then move every object into the garbage collector's
        permanent generation (``gc.freeze()``): a run's collections and its end
        (:func:`_finish`) then look at the run's own objects only, and leave the zygote's
        memory pages shared."""
        self.files = [obj for obj in gc.get_objects() if type(obj) in _FILE_TYPES]
        gc.freeze()
        self.frozen = True

    # -- learning the imports of the runs -------------------------------------------------
    def read_lesson(self, fd: int) -> None:
        """Take in the names a run sent (its imports besides this zygote's modules) and
        import them here too, so that the next runs start with them (a lazy ``import
        torch._dynamo`` inside the function costs the first runs only). A lesson that
        initialised an accelerator runtime ends the zygote's service, said in one line."""
        data = os.read(fd, 1 << 16)
        if not data:
            os.close(fd)
            self.learn(self.lessons.pop(fd).split())
            return
        *lines, self.lessons[fd] = (self.lessons[fd] + data).split(b"\n")
        self.learn(lines)

    def learn(self, lines: list[bytes]) -> None:
        """Import the modules named (one a line) that this zygote lacks."""
        names = [line.decode(errors="replace").strip() for line in lines]
        new = [name for name in dict.fromkeys(names) if name and name not in sys.modules]
        if not new:
            return
        self.send({"learning": len(new)})  # the driver asks for no fork meanwhile
        learned = 0
        for name in new:
            with contextlib.suppress(Exception):
                importlib.import_module(name)
                learned += 1
        runtime = accelerator_in_use()
        if runtime is not None:
            self.send({"fallback": f"a module its runs import initialised {runtime}, which a "
                                   "forked process cannot use"})
            self.accepting = False
            return
        self.frozen = False  # frozen before the next fork: once, however many lessons
        self.send({"learned": learned, "rss_mib": resident_mib()})

    def _teach(self, known: set[str], final: bool) -> None:
        """In a run: send the modules it imported from outside the user's folders that no
        lesson named yet -- while it runs (``final`` False), only what the pipe takes at
        once (the rest goes with a later lesson); at its end, all of it, then close."""
        names = []
        for name in [name for name in list(sys.modules) if name not in known]:
            path = getattr(sys.modules.get(name), "__file__", None)
            if isinstance(path, str) and name != "__main__" and name not in self.taught \
                    and not _inside(path, self.local):
                names.append(name)
        with contextlib.suppress(OSError):
            os.set_blocking(self.lesson_fd, final)
            piece: list[str] = []
            size = 0
            for name in [*names, ""]:
                if piece and (not name or size + len(name) + 1 > _PIPE_BUF):
                    try:
                        os.write(self.lesson_fd, "".join(f"{n}\n" for n in piece).encode())
                    except BlockingIOError:  # full: a later lesson sends them
                        return
                    self.taught.update(piece)
                    piece, size = [], 0
                if name:
                    piece.append(name)
                    size += len(name) + 1
            if final:
                os.close(self.lesson_fd)
                self.lesson_fd = -1  # a daemon thread's import sends nothing more

    def _teach_while_importing(self, known: set[str]) -> None:
        """In a run: an audit hook sending a lesson at an import, :data:`LESSON_EVERY`
        seconds after the last one at the earliest."""
        last = time.monotonic()
        busy = False

        def hook(event: str, _args: Any) -> None:
            nonlocal last, busy
            if event != "import" or busy or self.lesson_fd < 0 or \
                    time.monotonic() - last < LESSON_EVERY:
                return
            busy = True
            try:
                with contextlib.suppress(Exception):  # never the run's import's failure
                    self._teach(known, final=False)
            finally:
                last = time.monotonic()
                busy = False

        sys.addaudithook(hook)

    # -- the wrapper (first child) ------------------------------------------------------
    def _as_wrapper(self, request: dict[str, Any]) -> NoReturn:
        try:
            status = self._wrap(request)
        except BaseException:  # noqa: BLE001  (the wrapper never returns into the loop)
            with contextlib.suppress(Exception):
                traceback.print_exc()
            status = 126
        os._exit(status)

    def _wrap(self, request: dict[str, Any]) -> int:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for fd in (0, self.reply_fd, self.wake_read, self.wake_write, *self.lessons):
            os.close(fd)
        self.lessons.clear()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _prctl(_PR_SET_NAME, WRAPPER_NAME.encode())
        run_dir = Path(request["run_dir"])
        env: dict[str, str] = {**self.base_env, **request["env"]}
        launch = request["launch"]
        job = request["job"] or f"{request['host']}:{os.getpid()}"
        os.chdir(run_dir)  # how a restarted driver tells which run this wrapper is
        done, launch = _restart_of(run_dir, launch, env)
        if done is not None:
            return done
        env = tracking_defaults(env)
        with contextlib.suppress(OSError):
            write_small(run_dir / STARTED_FILE,
                        f"launch={launch}\njob={job}\nhost={request['host']}\n"
                        f"cuda_visible_devices={env.get('CUDA_VISIBLE_DEVICES', '')}\n"
                        f"cpus={env.get('HPSEARCH_CPUS', '')}\n")
        got: list[str] = []
        for sig, word in _HELD.items():
            signal.signal(sig, lambda *_, word=word: got.append(word))
        child = os.fork()
        if child == 0:
            self._as_run(request, env)
        os.close(self.lesson_fd)  # the run's alone: its end is the lesson's end
        _, wait_status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(wait_status)
        status = 128 - code if code < 0 else code
        sig_word = f" {got[0]}" if got else ""
        try:
            write_small(run_dir / EXIT_FILE, f"{status} {launch}{sig_word}\n")
        except OSError:
            with contextlib.suppress(OSError), open(run_dir / STDERR_FILE, "a") as f:
                f.write(f"hpsearch-run: cannot write {run_dir / EXIT_FILE}\n")
        return status

    # -- the run (second child) -------------------------------------------------------------
    def _as_run(self, request: dict[str, Any], env: dict[str, str]) -> NoReturn:
        _prctl(_PR_SET_NAME, os.path.basename(sys.executable).encode()[:15])  # not a wrapper
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            os.chdir(request["cwd"])
        except OSError:
            os._exit(126)
        run_dir = Path(request["run_dir"])
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(run_dir / STDOUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            err = os.open(run_dir / STDERR_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError:
            os._exit(1)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(env)
        known = set(sys.modules)
        self._teach_while_importing(known)
        status = 70
        try:
            status = self._run(list(request["argv"]))
            _finish(self.files)
            self._teach(known, final=True)
        finally:
            os._exit(status)

    def _run(self, argv: list[str]) -> int:
        """The run's exit status; an interrupted run dies of SIGINT, as ``python`` does."""
        try:
            if self.kind == "function":
                from hpsearch.runs import objective_runner

                sys.argv = [objective_runner.__file__, *argv[3:]]
                return objective_runner.main(argv[3:], loaded=self.module)
            sys.argv = argv[1:]
            runpy.run_path(argv[1], run_name="__main__")
            return 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                return exc.code or 0
            print(exc.code, file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
            return 130
        except BaseException:  # noqa: BLE001  (the script's own error, as python prints it)
            traceback.print_exc()
            return 1


#: the file objects :func:`_finish` flushes (exact types: an ``isinstance`` check of every
#: object against ``io.IOBase`` takes a quarter of a second beside torch)
_FILE_TYPES = frozenset({io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom})


def _finish(inherited: list[Any]) -> None:
    """What the interpreter does at exit that a run may rely on, in its order: wait for the
    run's threads (all but daemons), run its ``atexit`` handlers, flush every open file (the
    run's own, which the garbage collector tracks outside its frozen generation, and the
    ``inherited`` ones its zygote's imports opened). The rest -- tearing down every module and
    a last garbage collection, seconds beside torch and JAX, whose ``__del__`` methods Python
    does not promise to run at exit -- is left out."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            with contextlib.suppress(RuntimeError):
                thread.join()
    atexit._run_exitfuncs()
    for obj in [*gc.get_objects(), *inherited, sys.stdout, sys.stderr]:
        if type(obj) in _FILE_TYPES:
            with contextlib.suppress(Exception):
                obj.flush()


def _restart_of(run_dir: Path, launch: str, env: dict[str, str]) -> tuple[int | None, str]:
    """The shell wrapper's rules for a requeued launch (:mod:`hpsearch.runs.wrapper`):
    ``(status, launch)`` of a start of this launch that ended on its own (nothing runs
    again); else ``(None, the launch key to run as)``: ``launch`` itself for a first start,
    ``<launch>.<r>`` for the r-th restart, whose earlier files are moved aside and whose
    ``env`` gets ``HPSEARCH_ATTEMPT`` raised by r and ``HPSEARCH_RESUMED=1``."""
    start = read_start(run_dir)
    if start is None:
        return None, launch
    base, restarts = split_launch(start.launch)
    if base != launch:
        return None, launch
    record = read_exit(run_dir, start.launch, start)
    if record is not None and record.signal is None:
        return record.exit_code, launch
    n = 1
    while (run_dir / ATTEMPTS_DIR / str(n)).exists():
        n += 1
    target = run_dir / ATTEMPTS_DIR / str(n)
    target.mkdir(parents=True)
    for name in ATTEMPT_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.replace(run_dir / name, target / name)
    env["HPSEARCH_ATTEMPT"] = str(int(env.get("HPSEARCH_ATTEMPT") or 1) + restarts + 1)
    env["HPSEARCH_RESUMED"] = "1"
    return None, f"{launch}.{restarts + 1}"


def main(argv: list[str]) -> int:
    """See the module docstring; ``argv``: driver pid (:data:`REMOTE` on an SSH host), kind,
    target."""
    parent, kind, target = argv[0], argv[1], argv[2]
    remote = parent == REMOTE
    if not remote:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != int(parent):  # the driver ended before the line above took effect
            return 0
    reply_fd = os.dup(1)
    os.set_inheritable(reply_fd, False)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)  # what the imports print goes nowhere (a run prints its own)
    os.dup2(null, 2)
    os.close(null)
    file = Path(target.rpartition(":")[0] if kind == "function" else target).resolve()
    zygote = Zygote(kind, None, reply_fd, (os.path.realpath(os.getcwd()), str(file.parent)),
                    remote)
    # torch.cuda.is_available() at import then asks NVML, not the CUDA driver, whose
    # initialisation a fork could not use (a run's environment is its own again)
    os.environ.setdefault(_NVML_CHECK, "1")
    try:
        zygote.module = preload(kind, target, zygote.local)
    except BaseException as exc:  # noqa: BLE001  (the user's module; each run will say why)
        zygote.send({"fallback": f"importing {target} failed "
                                 f"({type(exc).__name__}: {exc})".splitlines()[0]})
        return 0
    runtime = accelerator_in_use()
    if runtime is not None:
        zygote.send({"fallback": f"importing {target} initialised {runtime}, which a forked "
                                 "process cannot use"})
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    zygote.freeze()
    zygote.send({"ready": os.getpid(), "rss_mib": resident_mib()})
    zygote.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
