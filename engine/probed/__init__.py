"""The models under study: their config (`config`), building and loading (`model`), the one site
catalogue (`sites`), the fast site reader (`reader`), training (`train`) and scoring (`evaluate`).

May import: `tasks`, `train`, `runtime`, `errors`. Every site name, hook name and the
`x{L}.post` = `x{L+1}.pre` alias rule live in `sites` and nowhere else.
"""
