"""The conditional decoder (docs/design.md §2): its network (`model`), sampling (`sampling`),
training pairs (`pairs`), the training run (`config`, `train`, `job`), decoder files
(`files`) and the paper's in-epsilon check (`evaluate`).

May import: `probed`, `query.distance`, `store`, `train`, `runtime`, `errors`.
"""
