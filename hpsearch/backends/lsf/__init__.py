"""IBM Spectrum LSF: bsub arrays, bjobs parsing, bkill, and the job templates."""
