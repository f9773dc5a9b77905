"""The flow graph of one forward pass (docs/design.md §4): capture (`build`), per-edge
contributions (`contributions`), the logit lens on every node (`readout`) and the graph itself
with its JSON form (`graph`).

May import: `probed` (sites, the bridge), `tasks` (targets and labels), `threads`, `runtime`,
`errors`. Never `query`, `decoder` or `store`: a graph needs only a model and an input.
"""
