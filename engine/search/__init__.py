"""The local preimage search: a training-free way to draw inputs near the query's activation.

Chains start at the query and edit it one token move at a time (moves.py), with proposals from
the task's alphabet or the model's own next-token distribution (proposals.py); a chain keeps a
move while the edited input stays within epsilon of the query activation (local.py). Every
distinct input it re-runs becomes a sample of the ordinary query result, so rankings, exports and
history are the decoder's. What its samples can show is read by the flip test
(engine/explain/flips.py), not by the decoder's base-rate summary.
"""
