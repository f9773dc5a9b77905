"""What lives on disk: model folders (`folders`), atomic safetensors files (`safefiles`),
model cards (`cards`) and CSV export (`export`).

May import: `probed` (to build what a folder holds), `query.types` (what a CSV writes), `tasks`,
`errors`. Writes into the bundled `models/` only when a command names it.
"""
