"""Slurm: sbatch arrays, squeue/sacct parsing, scancel, and the job templates."""
