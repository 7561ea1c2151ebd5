"""Views of the log: the projections, the materialized read models, time travel, history, metrics and the oracle."""
