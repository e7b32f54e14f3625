"""Reading a search directory: collect, status, the view, report, export and seeds."""
