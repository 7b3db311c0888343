"""A character-level (or any token-level) LSTM language model, trained by truncated BPTT.

    idx (N, T) -> Embedding -> TimeLSTM(stateful) -> TimeAffine -> TimeSoftmaxWithLoss(next idx)

``loss(xs, ts)`` is the mean cross-entropy of predicting ``ts[n, t]`` (the
token after ``xs[n, t]``); its exponential is the perplexity.  The LSTM keeps
its state from one call to the next (``stateful=True``): feeding consecutive
windows of a long text trains on the whole text while backprop stops at each
window's start (truncated BPTT).  ``reset_state()`` starts again from zeros.
``generate`` samples one token at a time from the softmax, feeding each back in.
"""

from __future__ import annotations

import numpy as np

from scratch.embedding import Embedding
from scratch.functions import softmax
from scratch.rnn import TimeLSTM
from scratch.time_layers import TimeAffine, TimeSoftmaxWithLoss


class LSTMLM:
    """Embedding (V, E) -> LSTM (H) -> per-step Affine (H, V); params ``embed_W``, ``Wx``,
    ``Wh``, ``b``, ``W``, ``b_out`` (uniform +-1/sqrt(fan) init, biases 0)."""

    def __init__(self, vocab_size: int, wordvec_size: int = 32, hidden_size: int = 128,
                 seed: int | None = None, dtype: np.dtype | type = np.float64) -> None:
        for name, value in (("vocab_size", vocab_size), ("wordvec_size", wordvec_size),
                            ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        V, E, H = vocab_size, wordvec_size, hidden_size
        self.vocab_size, self.wordvec_size, self.hidden_size = V, E, H
        rng = np.random.default_rng(seed)

        def uniform(shape: tuple[int, ...], fan: int) -> np.ndarray:
            k = 1.0 / np.sqrt(fan)
            return rng.uniform(-k, k, shape).astype(dtype)
        self.params = {"embed_W": (rng.standard_normal((V, E)) / np.sqrt(E)).astype(dtype),
                       "Wx": uniform((E, 4 * H), H), "Wh": uniform((H, 4 * H), H),
                       "b": np.zeros(4 * H, dtype=dtype), "W": uniform((H, V), H),
                       "b_out": np.zeros(V, dtype=dtype)}
        p = self.params
        self.embed = Embedding(p["embed_W"])
        self.lstm = TimeLSTM(p["Wx"], p["Wh"], p["b"], stateful=True)
        self.affine = TimeAffine(p["W"], p["b_out"])
        self.last_layer = TimeSoftmaxWithLoss()

    def reset_state(self) -> None:
        self.lstm.reset_state()

    def predict(self, xs: np.ndarray) -> np.ndarray:
        """Scores (N, T, V) of the next token at every step (carries the LSTM state on)."""
        return self.affine.forward(self.lstm.forward(self.embed.forward(xs)))

    def loss(self, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
        return self.last_layer.forward(self.predict(xs), ts)

    def gradient(self, xs: np.ndarray, ts: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(xs, ts)``, backprop through the window (not beyond it)."""
        self.loss(xs, ts)
        self.embed.backward(self.lstm.backward(self.affine.backward(self.last_layer.backward())))
        return {"embed_W": self.embed.dW, "Wx": self.lstm.dWx, "Wh": self.lstm.dWh,
                "b": self.lstm.db, "W": self.affine.dW, "b_out": self.affine.db}

    def generate(self, start: list[int], length: int, rng: np.random.Generator,
                 temperature: float = 1.0) -> list[int]:
        """``start`` followed by ``length`` sampled tokens (the state is reset first and after)."""
        self.reset_state()
        out = list(start)
        scores = self.predict(np.asarray([start]))[0, -1]
        for _ in range(length):
            p = softmax(scores.astype(np.float64) / temperature)
            out.append(int(rng.choice(len(p), p=p / p.sum())))
            scores = self.predict(np.asarray([[out[-1]]]))[0, -1]
        self.reset_state()
        return out
