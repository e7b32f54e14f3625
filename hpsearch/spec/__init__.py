"""What a search is: grid modules, search files, config templates, the run's command, values.

Also the distributions, the pruner a search names and the names hpsearch keeps for itself;
nothing here knows of runs, strategies or backends.
"""
