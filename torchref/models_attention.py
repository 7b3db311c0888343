"""Mirror of ``scratch.models_attention``: the small Transformer classifier as an ``nn.Module``.

Same constructor, methods and course-layout ``params`` (views) as the scratch model;
``model(x)`` returns the logits (what ``torchref.training.TorchTrainer`` calls) and
follows ``train()``/``eval()`` for the block's dropout.  ``from_scratch`` /
``to_scratch`` move the weights through ``torchref.convert``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from scratch._checks_attention import check_positive_int
from torchref import convert
from torchref.attention import TransformerBlock, positional_encoding, transformer_block_params
from torchref.functions import check_input_dtype
from torchref.gradient import params_numerical_gradient
from torchref.layers import SoftmaxWithLoss

if TYPE_CHECKING:
    import scratch.models_attention


class TransformerClassifier(nn.Module):
    """See ``scratch.models_attention.TransformerClassifier`` (same arguments, plus device)."""

    def __init__(self, seq_len: int, input_dim: int, embed_dim: int = 32, num_heads: int = 4,
                 forward_expansion: int = 2, n_classes: int = 10, dropout: float = 0.0,
                 seed: int | None = None, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        for name, value in (("seq_len", seq_len), ("input_dim", input_dim),
                            ("n_classes", n_classes), ("embed_dim", embed_dim),
                            ("forward_expansion", forward_expansion)):
            check_positive_int(name, value)
        self.seq_len, self.input_dim, self.embed_dim = seq_len, input_dim, embed_dim
        self.num_heads, self.forward_expansion = num_heads, forward_expansion
        self.n_classes, self.dropout = n_classes, dropout
        self.embed = nn.Linear(input_dim, embed_dim, dtype=dtype)
        self.block = TransformerBlock(transformer_block_params(embed_dim, forward_expansion,
                                                               seed, dtype), num_heads, dropout)
        self.head = nn.Linear(embed_dim, n_classes, dtype=dtype)
        self.register_buffer("pe", positional_encoding(seq_len, embed_dim, dtype))
        self.last_layer = SoftmaxWithLoss()
        self.to(device=device)

    def options(self) -> dict:
        """The constructor arguments (no seed, dtype or device)."""
        return {"seq_len": self.seq_len, "input_dim": self.input_dim,
                "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "forward_expansion": self.forward_expansion, "n_classes": self.n_classes,
                "dropout": self.dropout}

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """Course-layout views keyed like the scratch model's ``params``."""
        return {"W_in": self.embed.weight.T, "b_in": self.embed.bias, **self.block.params,
                "W_out": self.head.weight.T, "b_out": self.head.bias}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if len(shape) == 4 and shape[1] == 1:
            x = x.squeeze(1)
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.seq_len, self.input_dim):
            raise ValueError(f"x: expected shape (N, {self.seq_len}, {self.input_dim}) or "
                             f"(N, 1, {self.seq_len}, {self.input_dim}), got {shape}")
        check_input_dtype(x, self.embed.weight)
        h = self.embed(x) + self.pe
        return self.head(self.block(h, h, h).mean(dim=1))

    def predict(self, x: torch.Tensor, train_flg: bool = False) -> torch.Tensor:
        """Logits in training mode when ``train_flg`` (test mode otherwise)."""
        was_training = self.training
        self.train(train_flg)
        try:
            return self(x)
        finally:
            self.train(was_training)

    def loss(self, x: torch.Tensor, t: torch.Tensor, train_flg: bool = False) -> torch.Tensor:
        return self.last_layer(self.predict(x, train_flg), t)

    def gradient(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradients of ``loss(x, t, train_flg=True)`` by autograd, keyed like ``params``."""
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            self.loss(x, t, train_flg=True).backward()
        grads = {"W_in": self.embed.weight.grad.T, "b_in": self.embed.bias.grad,
                 **self.block.grads(), "W_out": self.head.weight.grad.T,
                 "b_out": self.head.bias.grad}
        return {k: v.clone() for k, v in grads.items()}

    @torch.no_grad()
    def numerical_gradient(self, x: torch.Tensor, t: torch.Tensor,
                           h: float = 1e-4) -> dict[str, torch.Tensor]:
        return params_numerical_gradient(lambda: self.loss(x, t, train_flg=True),
                                         self.params, h)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, t: torch.Tensor) -> float:
        y = self.predict(x, train_flg=False)
        labels = t.argmax(dim=-1) if t.shape == y.shape else t
        return float((y.argmax(dim=-1) == labels).double().mean())

    @classmethod
    def from_scratch(cls, model: scratch.models_attention.TransformerClassifier,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> TransformerClassifier:
        """The torch model with ``model``'s options and exact weights (dtype kept unless
        given; dropout masks are drawn per pass and not copied)."""
        if dtype is None:
            dtype = torch.from_numpy(model.params["W_in"][:0]).dtype
        tmodel = cls(**model.options(), dtype=dtype, device=device)
        return convert.load_transformer_classifier(tmodel, model)

    def to_scratch(self) -> scratch.models_attention.TransformerClassifier:
        """The scratch model with this model's exact weights."""
        return convert.transformer_classifier_to_scratch(self)
