"""Case studies of circuits: the heads and paths a model uses for a task, found by attribution,
attention and patching, then read with InversionView (ioi.py: the IOI circuit)."""
