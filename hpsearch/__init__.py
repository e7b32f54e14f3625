"""hpsearch: hyperparameter searches on GPU workstations and Slurm/LSF clusters."""

__version__ = "0.1.0"
