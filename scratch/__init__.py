"""scratch: deep-learning components written from scratch in NumPy.

Every module is a lesson: the docstring gives the formula, the shapes and the
hand-derived gradient; the code is the few vectorised lines that compute it.
This package imports nothing but NumPy.
"""

__all__ = ["conv", "convnet", "embedding", "functions", "gradcheck", "gradient", "im2col", "init",
           "layers", "leaky_relu", "lm", "losses", "models", "models_seq", "network", "optim",
           "perceptron", "rnn", "time_layers"]
