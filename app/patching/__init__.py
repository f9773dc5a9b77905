"""The causal check in the window: activation patching (engine/patching) on the engine thread.

A clean input (the query), a corrupted one (typed, a result's sample, or the query with one
token flipped), a metric; every node of the diagram is patched with the corrupted run's
activation, and the share of the effect each node carries is listed and painted on the diagram.

- `inputs.py`: what the panel says about a corrupted input before it runs (no torch, no Qt)
- `job.py`: the engine-thread job (a JobRequest of kind "patch") that builds the set-up and runs
- `overlay.py`: the diagram overlay, its colour scale, the header line and legend
- `table.py`: the ranked nodes as a table model, with a share bar
- `panel.py`: the "Causal check" tab's widgets
- `controller.py`: runs jobs, draws the answer, and keeps the map and the flow graph out of its way
"""
