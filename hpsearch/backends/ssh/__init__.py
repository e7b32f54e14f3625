"""Runs on a lab's workstations over SSH, with no scheduler (``--hosts``, ``--hosts_file``)."""
