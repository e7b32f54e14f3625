"""Grid Engine (SGE, Son of Grid Engine, Altair GE): qsub arrays, qstat/qacct parsing, qdel."""
