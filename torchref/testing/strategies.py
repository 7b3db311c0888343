"""Every hypothesis input maker of the parity suite, public and composable.

Use them in your own tests (``from torchref.testing import strategies as S``) as
they are, or compose them the way ``hypothesis.extra.numpy`` composes: a maker
of the components table is ``dtype -> strategy of Case``, a few lines over the
building blocks::

    def softplus_case(dtype):                      # x (N, C), N from 0, |x| <= 50
        return S.arrays(dtype, st.tuples(st.integers(0, 5), st.integers(1, 6)), 50.0).map(S.case)

Shapes and values are drawn by construction: a strategy for labels first draws
the number of classes and then labels below it, never a filter that throws
most draws away.  Values include the numerical edges (logits up to +-1e4, ties,
single samples, kernels as large as the padded input) because ``floats``
shrinks towards and samples boundaries.  Each topic lives in a private module
(``_strategies_arrays``, ``_strategies_training``, ``_strategies_conv``,
``_strategies_cases``, ``_strategies_idx``); this module is the one namespace.

Building blocks (arrays, logits, labels)
    ``FLOAT_DTYPES``, ``dtypes``; ``floats(dtype, bound)``, ``arrays(dtype, shape, bound)``
    (finite, in [-bound, bound]); ``batch_matrix``, ``smooth_batch`` (moderate values);
    ``logits(dtype, one_dim=)`` (unit, huge up to 1e4, or tied rows); ``labels_for(scores)``;
    ``onehot(labels, C, dtype)`` (a helper); ``probabilities``; ``nonsymmetric_square``;
    ``seeds``; ``case(*args, init=(), **kwargs)`` (a ``Case``); ``long_run`` (settings
    with a third of the profile's examples).
Training toolkit
    ``mlp_case``, ``regularised_mlp_case``, ``OPTIMIZER_NAMES``, ``optimizer_kwargs(name)``,
    ``dropout_case``, ``batchnorm_case`` (float32 conditioning by construction).
Convolution
    ``window_geometry``, ``out_size`` (a helper), ``image_values``, ``conv_case``,
    ``conv3x3_case`` (3x3, stride 1: the Winograd shapes),
    ``pool_case``, ``convnet_case``, ``regularised_convnet_case``.
Input makers of the components table (``dtype -> strategy of Case``)
    ``elementwise_case``, ``softmax_case``, ``mse_case``, ``probabilities_case``,
    ``logits_targets_case``, ``affine_case``, ``mlp_parity_case``, ``leaky_relu_case``,
    ``leaky_relu_function_case``, ``convolution_case``, ``pooling_case``,
    ``convnet_parity_case``, ``dropout_layer_case``, ``batchnorm_layer_case``,
    ``optimizer_steps_case``, ``distillation_loss_case``.
Knowledge distillation
    ``TEMPERATURE_RANGE``, ``temperatures``, ``alphas``, ``logits_of_shape``,
    ``distillation_case``.
IDX files
    ``IDX_CODES``, ``idx_arrays``, ``idx_bytes`` (a helper).
Non-finite values (``_nonfinite``): the input makers of the table draw +inf, -inf and NaN
    (``nonfinite=True``) where torch defines the result
    ``NONFINITE``, ``maybe_nonfinite``, ``sprinkled``, ``dout_edges``, ``edge_row``,
    ``edge_examples`` (the pinned edges of the built-in rows), ``pinned_edges`` (a row's
    built-in edges and its own ``Component.examples``).
Deeper CNNs, schedules, the distillation recipe (``_strategies_cnn``)
    ``SPEC_NET_KINDS``, ``spec_net_case``, ``spec_net_parity_case``, ``SCHEDULER_NAMES``,
    ``scheduler_case``, ``distillation_recipe_case``.
Layer normalization, attention and the Transformer (``_strategies_attention``)
    ``grid``, ``layernorm_rows``, ``layernorm_case``, ``attention_mask``, ``attention_case``,
    ``mha_weights``, ``mha_inputs``, ``mha_case``, ``block_params``, ``transformer_block_case``,
    ``positional_encoding_case``, ``transformer_classifier_case`` (float32 conditioning by
    construction: see the module's docstring).
Recurrent layers (``_strategies_rnn``)
    ``lengths``, ``rnn_params``, ``rnn_case``, ``nonfinite_sequence``, ``embedding_case``,
    ``time_affine_case``, ``time_targets_case``, ``clip_grads_case``, ``lstm_classifier_case``.
"""

from torchref.testing._nonfinite import (
    NONFINITE,
    dout_edges,
    edge_examples,
    edge_row,
    maybe_nonfinite,
    pinned_edges,
    sprinkled,
)
from torchref.testing._strategies_arrays import (
    FLOAT_DTYPES,
    arrays,
    batch_matrix,
    case,
    dtypes,
    floats,
    labels_for,
    logits,
    long_run,
    nonsymmetric_square,
    onehot,
    probabilities,
    seeds,
    smooth_batch,
)
from torchref.testing._strategies_attention import (
    attention_case,
    attention_mask,
    block_params,
    grid,
    layernorm_case,
    layernorm_rows,
    mha_case,
    mha_inputs,
    mha_weights,
    positional_encoding_case,
    transformer_block_case,
    transformer_classifier_case,
)
from torchref.testing._strategies_cases import (
    TEMPERATURE_RANGE,
    affine_case,
    alphas,
    batchnorm_layer_case,
    convnet_parity_case,
    convolution_case,
    distillation_case,
    distillation_loss_case,
    dropout_layer_case,
    elementwise_case,
    leaky_relu_case,
    leaky_relu_function_case,
    logits_of_shape,
    logits_targets_case,
    mlp_parity_case,
    mse_case,
    optimizer_steps_case,
    pooling_case,
    probabilities_case,
    softmax_case,
    temperatures,
)
from torchref.testing._strategies_cnn import (
    SCHEDULER_NAMES,
    SPEC_NET_KINDS,
    distillation_recipe_case,
    scheduler_case,
    spec_net_case,
    spec_net_parity_case,
)
from torchref.testing._strategies_conv import (
    conv3x3_case,
    conv_case,
    convnet_case,
    image_values,
    out_size,
    pool_case,
    regularised_convnet_case,
    window_geometry,
)
from torchref.testing._strategies_idx import IDX_CODES, idx_arrays, idx_bytes
from torchref.testing._strategies_rnn import (
    clip_grads_case,
    embedding_case,
    lengths,
    lstm_classifier_case,
    nonfinite_sequence,
    rnn_case,
    rnn_params,
    time_affine_case,
    time_targets_case,
)
from torchref.testing._strategies_training import (
    OPTIMIZER_NAMES,
    batchnorm_case,
    dropout_case,
    mlp_case,
    optimizer_kwargs,
    regularised_mlp_case,
)

__all__ = [
    "FLOAT_DTYPES",
    "IDX_CODES",
    "NONFINITE",
    "OPTIMIZER_NAMES",
    "SCHEDULER_NAMES",
    "SPEC_NET_KINDS",
    "TEMPERATURE_RANGE",
    "affine_case",
    "alphas",
    "arrays",
    "attention_case",
    "attention_mask",
    "batch_matrix",
    "batchnorm_case",
    "batchnorm_layer_case",
    "block_params",
    "case",
    "clip_grads_case",
    "conv3x3_case",
    "conv_case",
    "convnet_case",
    "convnet_parity_case",
    "convolution_case",
    "distillation_case",
    "distillation_loss_case",
    "distillation_recipe_case",
    "dout_edges",
    "dropout_case",
    "dropout_layer_case",
    "dtypes",
    "edge_examples",
    "edge_row",
    "elementwise_case",
    "embedding_case",
    "floats",
    "grid",
    "idx_arrays",
    "idx_bytes",
    "image_values",
    "labels_for",
    "layernorm_case",
    "layernorm_rows",
    "leaky_relu_case",
    "leaky_relu_function_case",
    "lengths",
    "logits",
    "logits_of_shape",
    "logits_targets_case",
    "long_run",
    "lstm_classifier_case",
    "maybe_nonfinite",
    "mha_case",
    "mha_inputs",
    "mha_weights",
    "mlp_case",
    "mlp_parity_case",
    "mse_case",
    "nonfinite_sequence",
    "nonsymmetric_square",
    "onehot",
    "optimizer_kwargs",
    "optimizer_steps_case",
    "out_size",
    "pinned_edges",
    "pool_case",
    "pooling_case",
    "positional_encoding_case",
    "probabilities",
    "probabilities_case",
    "regularised_convnet_case",
    "regularised_mlp_case",
    "rnn_case",
    "rnn_params",
    "scheduler_case",
    "seeds",
    "smooth_batch",
    "softmax_case",
    "spec_net_case",
    "spec_net_parity_case",
    "sprinkled",
    "temperatures",
    "time_affine_case",
    "time_targets_case",
    "transformer_block_case",
    "transformer_classifier_case",
    "window_geometry",
]
