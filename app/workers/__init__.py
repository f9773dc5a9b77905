"""The app's threads and what they are asked: the engine thread (`engine_thread`) that loads
models and runs queries, the flow worker (`flow_worker`), the training thread
(`train_thread`) and their request types (`query_request`, `flow_request`). The one thread
policy is `engine.threads`; nothing here blocks the GUI thread."""
