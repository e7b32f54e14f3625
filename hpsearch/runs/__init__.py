"""One run: its model, its directory files, the job wrapper, summaries, curves and the reporter.

Also the function objective's runner and process-group stopping.

Importing this package stays cheap (standard library only): a sim on a compute node imports
:mod:`hpsearch.runs.reporter` through ``from hpsearch import report``.
"""
