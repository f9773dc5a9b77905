"""Decoder training in the app: the dialog (`dialog`), its settings form (`form`) and the
quality-against-time curve (`curve`, also `python -m app.training.curve`). The run itself is
`app.workers.train_client` running the engine's trainer in its own engine process."""
