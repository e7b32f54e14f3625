"""``hpsearch serve``: a search served over HTTP (its app, guards, points, backends)."""
