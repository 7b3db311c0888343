"""The training loop of the course, reusable: data order, steps, evaluation, checkpoints.

One epoch visits the training set in an order that is a pure function of
``(seed, epoch)``::

    order = default_rng([seed, epoch]).permutation(N)
    batches = order[0:B], order[B:2B], ...        (the last one may be shorter)

so scratch and torch (``--impl both``) see the same batches, and a run resumed
from a checkpoint recomputes exactly the order it was interrupted in: there is
no hidden generator state to lose.

``val_split`` holds out the validation samples the same way, by the seed alone.

A step is the course's ``grads = model.gradient(x, t); optimizer.update(params,
grads)``.  ``Trainer.state_arrays`` flattens the parameters and the optimizer's
state (whatever arrays, dicts of arrays and numbers it keeps: SGD none,
Momentum its velocities, Adam its moments and step count) into one dict of
arrays, saved with ``save_npz_atomic`` (``np.savez``; loaded without pickle).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from scratch._atomic import atomic_write
from scratch.checkpoints import POINTER, read_pointer, save_checkpoint  # noqa: F401 (re-exported)
from scratch.models_attention import TransformerClassifier
from scratch.models_seq import LSTMClassifier, check_cell

MODELS = ("mlp", "cnn", "simplecnn", "deepcnn", "lstm", "gru", "rnn", "transformer")
# The default hidden width of each model (the course's / the reference text's).
HIDDEN = {"mlp": 100, "cnn": 128, "simplecnn": 100, "deepcnn": 50, "lstm": 64, "gru": 64,
          "rnn": 64, "transformer": 32}


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of ``range(n)`` visited in ``epoch`` (a function of seed and epoch only)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Index arrays of the epoch's minibatches, in order; the last may be shorter."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    order = epoch_order(n, seed, epoch)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


# The regularisation options each model takes (``scripts/train.py`` refuses the others).
OPTIONS = {"mlp": ("dropout", "batchnorm", "weight_decay"),
           "cnn": ("dropout", "weight_decay"),
           "simplecnn": ("dropout", "batchnorm", "weight_decay"),
           "deepcnn": ("dropout", "weight_decay"),
           "lstm": (), "gru": (), "rnn": (), "transformer": ()}
CNN_DROPOUT = 0.5     # the reference text's CNN: fixed dropouts 0.25 (after the pool) and 0.5


def check_model_options(name: str, dropout: float = 0.0, batchnorm: bool = False,
                        weight_decay: float = 0.0) -> None:
    """``ValueError`` naming the option when ``name`` does not take it (or the value is bad)."""
    if name not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {name!r}")
    if not (0.0 <= dropout < 1.0):
        raise ValueError(f"dropout: expected a ratio in [0, 1), got {dropout!r}")
    if not (np.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay: expected a finite number >= 0, got {weight_decay!r}")
    for option, used in (("dropout", dropout > 0), ("batchnorm", bool(batchnorm)),
                         ("weight_decay", weight_decay > 0)):
        if used and option not in OPTIONS[name]:
            takes = ", ".join(OPTIONS[name]) or "none of dropout, batchnorm, weight_decay"
            raise ValueError(f"{option}: the {name} model has no {option} option (it takes "
                             f"{takes})")
    if name == "cnn" and dropout not in (0.0, CNN_DROPOUT):
        raise ValueError(f"dropout: the cnn's dropouts are the reference text's, fixed at "
                         f"0.25 and 0.5; give {CNN_DROPOUT} to turn them on, got {dropout!r}")


def val_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of ``n`` training samples, both sorted.

    ``round(fraction * n)`` samples, drawn by ``default_rng([VAL_STREAM, seed])`` (a stream
    apart from ``epoch_order``'s), are held out for validation; ``fraction`` 0 holds out none.
    """
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"val_fraction: expected a fraction in [0, 1), got {fraction!r}")
    n_val = round(fraction * n)
    if fraction > 0 and not (1 <= n_val < n):
        raise ValueError(f"val_fraction: {fraction} of {n} samples leaves "
                         f"{n_val} for validation and {n - n_val} for training; "
                         f"both need at least one")
    order = np.random.default_rng([VAL_STREAM, seed]).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


VAL_STREAM = 0x76616C   # "val"
TIE_BREAKS = ("val-loss", "first")


def improves(val_acc: float, val_loss: float, best: dict, tie_break: str = "val-loss") -> bool:
    """Whether an epoch's validation figures beat ``best`` (``{"val_acc", "val_loss"}``).

    A higher accuracy wins; on equal accuracy, ``tie_break`` "val-loss" keeps the epoch with
    the lower validation loss (a strictly lower one), "first" the earlier epoch.
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break: expected one of {TIE_BREAKS}, got {tie_break!r}")
    if best.get("val_acc") is None or val_acc > best["val_acc"]:
        return True
    return tie_break == "val-loss" and val_acc == best["val_acc"] and \
        val_loss < best["val_loss"]


def make_model(name: str, input_shape: tuple[int, ...], n_classes: int = 10,
               seed: int | None = None, dtype: type = np.float32,
               hidden: int | Sequence[int] | None = None, dropout: float = 0.0,
               batchnorm: bool = False, weight_decay: float = 0.0):
    """The one factory of ``--model``; ``hidden`` defaults to ``HIDDEN[name]``.

    ``dropout`` (a ratio; 0: none), ``batchnorm`` and ``weight_decay`` (the course's L2
    ``lambda``) where the model has them (``OPTIONS``; ``check_model_options`` says which).

    ``mlp``: ``scratch.models.MLP`` input -> ``hidden`` -> classes, relu, He init
    (``hidden`` may list several widths: ``[256, 256]``).
    ``cnn``: ``scratch.models.CNN``, the reference text's network (conv 32 - conv 64 -
    pool - fc ``hidden`` - fc), He init, no dropout.
    ``simplecnn``: ``scratch.models.SimpleConvNet`` conv - relu - pool 2x2 - ``hidden`` -
    classes, 30 filters, He init (the course's fixed std 0.01 barely trains in a few
    epochs).  28x28 images take the course's 5x5 filters without padding; images under
    16 pixels (the 8x8 digits) take 5x5 filters with padding 2, so the pooled maps stay
    4x4 instead of 2x2.
    ``deepcnn``: ``scratch.models.DeepConvNet``, the course's deep network, He init,
    its dropout only with ``dropout`` > 0: scratch and torch draw different dropout
    masks, so a lockstep run (``--impl both``) could not compare them.
    ``lstm``, ``gru``, ``rnn``: ``scratch.models_seq.LSTMClassifier`` reading each image
    as a sequence of its rows (8 rows of 8 pixels for the digits), ``hidden`` wide.
    ``transformer``: ``scratch.models_attention.TransformerClassifier``, the rows as tokens
    embedded in ``hidden`` (= E) features, positional encoding, one post-norm block with 4
    heads, mean-pooled.
    """
    from scratch import models
    check_model_options(name, dropout, batchnorm, weight_decay)
    reg = {"weight_decay_lambda": weight_decay}
    hidden = HIDDEN[name] if hidden is None else hidden
    widths = [int(hidden)] if np.ndim(hidden) == 0 else [int(h) for h in hidden]
    if name == "mlp":
        return models.MLP([int(np.prod(input_shape)), *widths, n_classes], "relu",
                          seed=seed, dtype=dtype, use_dropout=dropout > 0,
                          dropout_ratio=dropout or 0.5, use_batchnorm=batchnorm, **reg)
    if len(widths) != 1:
        raise ValueError(f"hidden: the {name} has one hidden layer, got widths {widths}")
    if name == "cnn":
        return models.CNN(tuple(input_shape), widths[0], n_classes, use_dropout=dropout > 0,
                          seed=seed, dtype=dtype, **reg)
    if name == "deepcnn":
        return models.DeepConvNet(tuple(input_shape), widths[0], n_classes,
                                  use_dropout=dropout > 0, dropout_ratio=dropout or 0.5,
                                  seed=seed, dtype=dtype, **reg)
    if name in ("lstm", "gru", "rnn"):
        return make_sequence_model(name, input_shape, n_classes, seed=seed, dtype=dtype,
                                   hidden=widths[0])
    if name == "transformer":
        return TransformerClassifier(seq_len=int(np.prod(input_shape[:-1])),
                                     input_dim=int(input_shape[-1]), embed_dim=widths[0],
                                     num_heads=4, forward_expansion=2, n_classes=n_classes,
                                     seed=seed, dtype=dtype)
    small = min(input_shape[1:]) < 16
    return models.SimpleConvNet(
        input_dim=tuple(input_shape),
        conv_param={"filter_num": 30, "filter_size": 5, "pad": 2 if small else 0,
                    "stride": 1},
        hidden_size=widths[0], output_size=n_classes, weight_init_std="he", seed=seed,
        dtype=dtype, use_dropout=dropout > 0, dropout_ratio=dropout or 0.5,
        use_batchnorm=batchnorm, **reg)


def make_sequence_model(name: str, input_shape: tuple[int, ...], n_classes: int = 10,
                        seed: int | None = None, dtype: type = np.float32,
                        hidden: int = 64) -> LSTMClassifier:
    """``--model lstm|gru|rnn`` of ``scripts/train.py``: images (C, H, W) read as H rows of W
    pixels (C H rows when C > 1), the hidden state ``hidden`` wide."""
    check_cell(name)
    return LSTMClassifier(int(input_shape[-1]), int(np.ravel(hidden)[0]), n_classes, cell=name,
                          seed=seed, dtype=dtype)


def evaluate(model, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> tuple[float, float]:
    """Mean loss and accuracy over (x, t), in batches (bounded memory for conv nets)."""
    n = len(x)
    loss_sum, correct = 0.0, 0
    for i in range(0, n, batch_size):
        xb, tb = x[i:i + batch_size], t[i:i + batch_size]
        y = model.predict(xb)
        loss_sum += float(model.last_layer.forward(y, tb)) * len(xb)
        labels = tb.argmax(axis=-1) if tb.ndim == 2 else tb
        correct += int(np.sum(y.argmax(axis=-1) == labels))
    return loss_sum / n, correct / n


class Trainer:
    """``model`` + ``optimizer`` with the course's interfaces; ``step`` returns the batch loss."""

    def __init__(self, model, optimizer) -> None:
        self.model, self.optimizer = model, optimizer

    def step(self, x: np.ndarray, t: np.ndarray) -> float:
        grads = self.model.gradient(x, t)          # forward (caches the loss) and backward
        loss = float(self.model.last_layer.loss)
        self.optimizer.update(self.model.params, grads)
        return loss

    def evaluate(self, x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
        return evaluate(self.model, x, t)

    def params_numpy(self) -> dict[str, np.ndarray]:
        return self.model.params

    def layers(self) -> list:
        """The model's layer objects, in order (``layers`` is a list or a dict by name)."""
        layers = getattr(self.model, "layers", [])
        return list(layers.values()) if isinstance(layers, dict) else list(layers)

    def batchnorms(self) -> list:
        """The model's ``BatchNormalization`` layers (their running statistics are state too)."""
        from scratch.batchnorm import BatchNormalization
        return [la for la in self.layers() if isinstance(la, BatchNormalization)]

    def generators(self) -> list[np.random.Generator]:
        """The distinct generators the layers draw from (dropout masks), in layer order."""
        found: dict[int, np.random.Generator] = {}
        for layer in self.layers():
            if isinstance(getattr(layer, "rng", None), np.random.Generator):
                found.setdefault(id(layer.rng), layer.rng)
        return list(found.values())

    def rng_state(self) -> list[dict]:
        """The generators' states (JSON-safe dicts: a resumed run draws the same masks)."""
        return [g.bit_generator.state for g in self.generators()]

    def set_rng_state(self, states: list[dict]) -> None:
        generators = self.generators()
        if len(states) != len(generators):
            raise ValueError(f"rng: expected {len(generators)} generator states, got "
                             f"{len(states)}")
        for g, state in zip(generators, states, strict=True):
            g.bit_generator.state = state

    def weights(self) -> dict[str, np.ndarray]:
        """Copies of the parameters (``param/K``) and running statistics (``bn/J/running_*``):
        what ``load_weights`` puts back (the best-by-validation model)."""
        out = {f"param/{k}": v.copy() for k, v in self.model.params.items()}
        for j, layer in enumerate(self.batchnorms(), start=1):
            out[f"bn/{j}/running_mean"] = np.array(layer.running_mean, copy=True)
            out[f"bn/{j}/running_var"] = np.array(layer.running_var, copy=True)
        return out

    def check_weights(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``arrays`` if they have exactly ``weights()``'s keys and shapes, else ``ValueError``."""
        mine = self.weights()
        if set(arrays) != set(mine):
            raise ValueError(f"weights: expected keys {sorted(mine)}, got {sorted(arrays)}")
        for k, v in mine.items():
            if arrays[k].shape != v.shape:
                raise ValueError(f"weights {k}: expected shape {v.shape}, got {arrays[k].shape}")
        return arrays

    def load_weights(self, arrays: dict[str, np.ndarray]) -> None:
        """Put ``weights()`` back (parameters copied in place, running statistics)."""
        self.check_weights(arrays)
        for k, v in self.model.params.items():
            v[...] = arrays[f"param/{k}"]
        self._load_bn(arrays)

    def _load_bn(self, arrays: dict[str, np.ndarray]) -> None:
        for j, layer in enumerate(self.batchnorms(), start=1):
            if f"bn/{j}/running_mean" in arrays:
                layer.running_mean = arrays[f"bn/{j}/running_mean"].copy()
                layer.running_var = arrays[f"bn/{j}/running_var"].copy()

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Parameters (``param/K``), running statistics (``bn/J/running_*``) and optimizer
        state (``opt/attr`` or ``opt/attr/K``)."""
        out = {f"param/{k}": v for k, v in self.model.params.items()}
        out.update({k: v for k, v in self.weights().items() if k.startswith("bn/")})
        for attr, value in vars(self.optimizer).items():
            if isinstance(value, dict):
                out.update({f"opt/{attr}/{k}": np.asarray(v) for k, v in value.items()})
            elif isinstance(value, (np.ndarray, int, float, np.number)) \
                    and not isinstance(value, bool):
                out[f"opt/{attr}"] = np.asarray(value)
        return out

    def check_state_arrays(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``arrays`` if ``load_state_arrays`` can restore them whole, else ``ValueError``.

        Every parameter with its shape, every number the optimizer keeps (``opt/lr``,
        Adam's ``opt/iter``...), and each per-parameter state (``opt/v/K``) for every
        parameter ``K`` with ``K``'s shape.
        """
        shapes = {k: v.shape for k, v in self.model.params.items()}
        wanted = [k for k in self.state_arrays()
                  if k.startswith(("param/", "bn/")) or k.count("/") == 1]
        missing = [k for k in wanted if k not in arrays]
        if missing:
            raise ValueError(f"checkpoint: missing {', '.join(missing)}")
        groups: dict[str, set[str]] = {}
        for key, value in arrays.items():
            parts = key.split("/")
            per_param = (parts[0] == "param" and len(parts) == 2) or \
                (parts[0] == "opt" and len(parts) == 3)
            if not per_param:
                continue
            if parts[-1] not in shapes:
                raise ValueError(f"checkpoint {key}: the model has no parameter {parts[-1]!r}")
            if value.shape != shapes[parts[-1]]:
                raise ValueError(f"checkpoint {key}: expected shape {shapes[parts[-1]]}, "
                                 f"got {value.shape}")
            if parts[0] == "opt":
                groups.setdefault(parts[1], set()).add(parts[2])
        for attr, keys in groups.items():
            if keys != set(shapes):
                raise ValueError(f"checkpoint opt/{attr}: expected entries for "
                                 f"{sorted(shapes)}, got {sorted(keys)}")
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of ``state_arrays``: parameters copied in place, optimizer state restored.

        Checked whole first (``check_state_arrays``): a bad set changes nothing.
        """
        self.check_state_arrays(arrays)
        for k, v in self.model.params.items():
            v[...] = arrays[f"param/{k}"]
        self._load_bn(arrays)
        state: dict = {}
        for key, value in arrays.items():
            parts = key.split("/")
            if parts[0] != "opt":
                continue
            if len(parts) == 3:
                state.setdefault(parts[1], {})[parts[2]] = value.copy()
            else:
                old = getattr(self.optimizer, parts[1], None)
                state[parts[1]] = value.item() if isinstance(old, (int, float)) or \
                    value.ndim == 0 else value.copy()
        for attr, value in state.items():
            setattr(self.optimizer, attr, value)


# ----------------------------------------------------------------------------- atomic files
# (checkpoint sets, their pointer, hashes, name checks, the run-folder lock: scratch.checkpoints)

def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` of ``arrays`` into ``path`` (exactly that name: no ``.npz`` appended)."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def save_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``write_npz`` done atomically (see ``scratch._atomic.atomic_write``)."""
    atomic_write(path, lambda tmp: write_npz(tmp, arrays))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays saved by ``save_npz_atomic`` (pickle refused)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def iterate(batches: list[np.ndarray], start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(step index within the epoch, indices) from ``start`` on (to resume mid-epoch)."""
    for i in range(start, len(batches)):
        yield i, batches[i]
