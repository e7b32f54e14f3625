"""How a run's command starts on its nodes: the search's ``launcher:`` made into the run's argv.

A run's :attr:`~hpsearch.runs.model.Run.argv` stays its own command (``[python, *flags,
script, *words]``, what the journal and ``command.sh`` hold); a backend starts
:func:`launch_of` it, by ``run.resources.launcher``:

* none, ``srun``, ``mpirun``: the command as it is. With ``srun`` or ``mpirun`` the command
  launches itself (a ``script:`` that calls ``srun``/``mpirun``, inside the run's job of
  ``nodes: K``): hpsearch adds nothing, since the user's command already names the launcher's
  own options (tasks, binding, hostfile).
* ``torchrun``: through torch's elastic launcher, run by the command's own interpreter
  (``python -m torch.distributed.run`` is ``torchrun``), ``--nproc_per_node`` being the run's
  GPUs per node (1 without GPUs: one process per node, gloo on CPU). One node, the rendezvous
  on a free port of this machine (``--standalone``)::

      <python> [flags] -m torch.distributed.run --standalone --nnodes=1 --nproc_per_node=G
          train.py --out_dir=<run>/out --lr=0.1

  K nodes: the same argv on every node; a c10d rendezvous store on the first node (its
  ``host:port``, a port free there, chosen when the run starts) numbers the nodes::

      <python> [flags] -m torch.distributed.run --nnodes=K --nproc_per_node=G
          --rdzv_backend=c10d --rdzv_endpoint=<host>:<port> --rdzv_id=<run id>
          train.py --out_dir=<run>/out --lr=0.1

  On Slurm the K-node argv runs inside the run's job through one ``srun``, one task per node
  (srun ends when every node's task ended, with the worst status, and passes a signal on to
  every node; ``--kill-on-bad-exit`` ends the others when one fails)::

      srun --nodes=K --ntasks=K --ntasks-per-node=1 --cpus-per-task=C --kill-on-bad-exit=1
          <python> [flags] -m torch.distributed.run --nnodes=K ...

  torchrun starts a Python script or module (it runs other programs only with
  ``--no_python``, which would lose the command's interpreter): a command whose interpreter
  (``--python``) is not named ``python*``/``pypy*``, or whose script is not a ``.py`` file, is
  refused before anything runs (:func:`torchrun_refusal`). Interpreter flags before the script
  apply to torchrun's agent; its workers run ``<python> -u script``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hpsearch.runs.model import Run
from hpsearch.spec.invocation import FLAGS_WITH_VALUE

#: how the command's interpreter runs torchrun
TORCHRUN = ("-m", "torch.distributed.run")
#: what the run's interpreter runs (``python -c``) on a K-node run's first host to print a
#: TCP port free there, for its rendezvous
FREE_PORT_SCRIPT = ('import socket; s = socket.socket(); s.bind(("", 0)); '
                    "print(s.getsockname()[1])")
_PYTHON = re.compile(r"(?:python|pypy)[\d.]*(?:\.exe)?")


@dataclass(frozen=True)
class Launch:
    """A run's argv as its launcher starts it: ``head``, then (``rendezvous``: a K-node
    torchrun) the word ``--rdzv_endpoint=<host>:<port>``, known only when the run starts,
    then ``tail``."""

    head: tuple[str, ...]
    tail: tuple[str, ...] = ()
    rendezvous: bool = False

    def argv(self, endpoint: str | None = None) -> list[str]:
        """The whole argv; ``endpoint`` (``host:port``) is required for a rendezvous."""
        if not self.rendezvous:
            return [*self.head, *self.tail]
        if not endpoint:
            raise ValueError("a K-node torchrun needs its rendezvous endpoint host:port")
        return [*self.head, f"--rdzv_endpoint={endpoint}", *self.tail]


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``[python, *flags, target...]`` -> (``[python, *flags]``, ``[target...]``), the
    target being ``script ...`` or ``-m module ...``."""
    i = 1
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-m":
        i += 2 if argv[i] in FLAGS_WITH_VALUE else 1
    return list(argv[:i]), list(argv[i:])


def torchrun_refusal(argv: Sequence[str]) -> str | None:
    """Why the command ``argv`` cannot start through torchrun (one line), None if it can."""
    interpreter, target = _split(argv)
    if not _PYTHON.fullmatch(os.path.basename(interpreter[0])):
        return (f"launcher: torchrun starts a Python command, but the command's interpreter is "
                f"{interpreter[0]!r}: set --python to the Python that has torch, or drop "
                "launcher")
    if target and target[0] != "-m" and not target[0].endswith(".py"):
        return (f"launcher: torchrun starts a Python script, but the script is {target[0]!r}: "
                "name a .py file (script:, _SCRIPT_NAME) or drop launcher")
    return None


def launch_of(run: Run, srun: bool = False) -> Launch:
    """How ``run`` starts (module docstring); ``srun``: a K-node run inside its Slurm job."""
    resources = run.resources
    if resources.launcher != "torchrun":
        return Launch(tuple(run.argv))
    interpreter, target = _split(run.argv)
    nodes = resources.nodes
    options = [f"--nnodes={nodes}", f"--nproc_per_node={max(resources.gpus, 1)}"]
    if nodes == 1:
        return Launch((*interpreter, *TORCHRUN, "--standalone", *options, *target))
    head = (*interpreter, *TORCHRUN, *options, "--rdzv_backend=c10d")
    if srun:
        head = ("srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1",
                f"--cpus-per-task={resources.cpus}", "--kill-on-bad-exit=1", *head)
    return Launch(head, (f"--rdzv_id={run.run_id}", *target), rendezvous=True)
