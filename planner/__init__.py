"""Hardware and model catalogs, the cost model, the placement solver and the planning report."""
