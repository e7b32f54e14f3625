"""The PBS scheduler (OpenPBS / PBS Professional, and Torque): ``--scheduler=pbs``."""
