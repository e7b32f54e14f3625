"""hpsearch: hyperparameter searches on GPU workstations and Slurm/LSF/SGE/PBS clusters.

Importing the package stays cheap (standard library only): a sim does
``from hpsearch import report`` to report intermediate results (see :mod:`hpsearch.runs.reporter`).
"""

from hpsearch.runs.reporter import report

__version__ = "0.1.0"
__all__ = ["report"]
