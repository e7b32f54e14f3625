"""The search loop: the driver, its journal and lock, pruners, results and progress."""
