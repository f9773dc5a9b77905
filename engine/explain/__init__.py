"""What an activation encodes, said for a person: the preimage summary (what the samples within
epsilon share with the query) and the information map over every node of the diagram.

Imports: engine.query (results and queries), engine.tasks (each task's features), engine.probed
(sites); never Qt, never the app."""
