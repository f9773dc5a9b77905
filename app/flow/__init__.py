"""The flow-graph panel: the graph view and its controller (`view`), threshold and target
controls (`controls`), the diagram overlay (`overlay`), the node pane (`node_pane`) and the
attention heatmap (`attention_heatmap`). Asks `app.workers` for graphs; computes nothing.
"""
