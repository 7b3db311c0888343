"""A sequence classifier: a recurrent layer read to its last state, then an Affine.

``LSTMClassifier`` reads x (N, T, D) step by step (or x (N, ...) with T D
features, reshaped to (N, T, D): the 8x8 digits as 8 rows of 8 pixels, the
classic row-by-row task), keeps the last hidden state h_T and classifies it:

    hs = TimeLSTM(xs)        (or TimeGRU / TimeRNN: ``cell=``)
    logits = h_T W + b       (Affine)
    loss = SoftmaxWithLoss(logits, t)

Backward: ``dlogits`` comes from the loss; the Affine gives ``dh_T``; only the
last step of ``dhs`` is non-zero, and BPTT carries it back through every step.
It has the course's model interface (``params``, ``predict``, ``loss``,
``gradient``, ``numerical_gradient``, ``accuracy``), so ``scripts/train.py``
and ``torchref.lockstep``-style loops drive it like ``MLP``.
"""

from __future__ import annotations

import numpy as np

from scratch._seq_checks import sequence_view_shape
from scratch.gradient import params_numerical_gradient
from scratch.layers import Affine, SoftmaxWithLoss
from scratch.losses import as_onehot
from scratch.rnn import TimeGRU, TimeLSTM, TimeRNN

CELLS = {"lstm": TimeLSTM, "gru": TimeGRU, "rnn": TimeRNN}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def check_cell(cell: str) -> None:
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")


def check_sizes(input_size: int, hidden_size: int, output_size: int) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("output_size", output_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def sequence_view(x: np.ndarray, input_size: int, name: str = "x") -> np.ndarray:
    """x (N, T, D), or (N, ...) with a multiple of D features per sample -> (N, T, D)."""
    return x.reshape(sequence_view_shape(tuple(x.shape), input_size, name))


class LSTMClassifier:
    """Recurrent layer -> last hidden state -> Affine -> softmax cross-entropy.

    Parameters
    ----------
    input_size, hidden_size, output_size : D, H and the number of classes.
    cell : ``"lstm"`` (default), ``"gru"`` or ``"rnn"`` (tanh).
    seed : seed of the initialisation (``np.random.default_rng``).
    dtype : float dtype of the parameters.

    Initialisation: every recurrent weight uniform in [-1/sqrt(H), 1/sqrt(H)]
    (torch's default for ``nn.LSTM``), biases 0, the Affine Xavier-normal
    (std sqrt(1/H)).  ``params``: ``Wx, Wh, b`` (GRU ``Wx, Wh, bx, bh``; layouts
    of ``scratch.rnn``) and ``W, b_out`` of the Affine, shared with the layers.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 cell: str = "lstm", seed: int | None = None,
                 dtype: np.dtype | type = np.float64) -> None:
        check_cell(cell)
        check_sizes(input_size, hidden_size, output_size)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.cell = cell
        rng = np.random.default_rng(seed)
        D, H, G = input_size, hidden_size, GATES[cell]
        k = 1.0 / np.sqrt(H)
        self.params: dict[str, np.ndarray] = {
            "Wx": rng.uniform(-k, k, (D, G * H)).astype(dtype),
            "Wh": rng.uniform(-k, k, (H, G * H)).astype(dtype),
        }
        for name in (("bx", "bh") if cell == "gru" else ("b",)):
            self.params[name] = np.zeros(G * H, dtype=dtype)
        self.params["W"] = (rng.standard_normal((H, output_size)) * k).astype(dtype)
        self.params["b_out"] = np.zeros(output_size, dtype=dtype)
        self.build_layers()

    def build_layers(self) -> None:
        """(Re)create the layers around the arrays in ``params``."""
        p = self.params
        biases = (p["bx"], p["bh"]) if self.cell == "gru" else (p["b"],)
        self.rnn = CELLS[self.cell](p["Wx"], p["Wh"], *biases)
        self.affine = Affine(p["W"], p["b_out"])
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Logits (N, classes) from the last hidden state."""
        hs = self.rnn.forward(sequence_view(np.asarray(x), self.input_size))
        return self.affine.forward(hs[:, -1])

    def loss(self, x: np.ndarray, t: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Mean softmax cross-entropy of the logits against t."""
        return self.last_layer.forward(self.predict(x, train_flg), t)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t)`` by backprop through the Affine and through time."""
        self.loss(x, t, train_flg=True)
        dh_last = self.affine.backward(self.last_layer.backward(1.0))
        dhs = np.zeros_like(self.rnn.hs)
        dhs[:, -1] = dh_last                    # only the last step feeds the classifier
        self.rnn.backward(dhs)
        grads = {"Wx": self.rnn.dWx, "Wh": self.rnn.dWh}
        if self.cell == "gru":
            grads["bx"], grads["bh"] = self.rnn.dbx, self.rnn.dbh
        else:
            grads["b"] = self.rnn.db
        grads["W"], grads["b_out"] = self.affine.dW, self.affine.db
        return grads

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray,
                           h: float = 1e-4) -> dict[str, np.ndarray]:
        """Central differences of ``loss(x, t)`` (slow; use float64)."""
        return params_numerical_gradient(lambda: self.loss(x, t), self.params, h)

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        y = self.predict(x)
        labels = as_onehot(y, t).argmax(axis=-1)
        return float(np.mean(y.argmax(axis=-1) == labels))
