"""Analysis over models and runners: compare, layerwise, bench, profile, autotune, graph diff, reports."""
