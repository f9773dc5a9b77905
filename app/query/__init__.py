"""Asking a query: the editor (`editor`), the token strip (`token_strip`), the model picker
(`model_picker`) and the run options (`run_controls`). Parses with the task; runs nothing."""
