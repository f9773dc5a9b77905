"""The window's side of the engine: the engine process's link (`engine_link`) and client
(`engine_client`), the training client (`train_client`, an engine process per job) and the request
types (`query_request`, `flow_request`, `job_request`). Nothing here blocks the GUI thread or
imports torch."""
