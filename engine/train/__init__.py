"""The training loop the probed-model and decoder trainers share (`loop.TrainingLoop`).

Owns: the optimiser, the learning rate set each step, clipping, the smoothed loss, checkpoints
with resume, stop requests and the training clock. May import `engine.store` and torch; knows
nothing of tasks, sites or decoders (each trainer brings its batch and loss).
"""
