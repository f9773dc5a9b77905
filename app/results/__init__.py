"""Showing a query's answer: the results table (`view`, `table_model`, `delegates`), the
distance histogram (`histogram`), past queries (`history`), side-by-side comparison
(`compare`) and export (`export`)."""
