"""InversionView queries (docs/design.md §2): sample from the decoder, re-run, rank.

`types` holds the options and results (no torch), `run` the query loop, `distance` the
normalised distances, `colour` the prob-diff colouring of chosen samples after a query.
May import: `probed`, `decoder`, `tasks`, `store` (loading), `errors`.
"""
