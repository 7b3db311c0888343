"""The known divergences: where a native torch reference takes a shortcut that differs from the
textbook formula, and how to compare anyway (re-exported by ``torchref.tolerance``, which
documents the policy; failure messages quote the matching rows)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Divergence:
    """One known difference between a native torch reference and the textbook formula."""

    name: str
    keywords: tuple[str, ...]   # lower-case words that make a failure message mention it
    what: str                   # where and by how much the two differ
    advice: str                 # how to compare anyway


KNOWN_DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        "softplus threshold", ("softplus",),
        "F.softplus(x, beta=1, threshold=20) returns x itself where beta*x > 20, so its "
        "gradient there is exactly 1 while the textbook sigmoid(x) is 1 - 2e-9 at x = 20: the "
        "float64 gradients differ by up to 2e-9 (twice the float64 tolerance) for x in (20, 37)",
        "compare against the mirror (a formula such as torch.logaddexp(x, 0)), or give the "
        "native reference threshold=40 (sigmoid(x) rounds to 1 in float64 above x = 37), or "
        "restrict the inputs to x <= 20"),
    Divergence(
        "log(softmax) vs log_softmax", ("log_softmax", "log(softmax", "kl_div", "distillation"),
        "log(softmax(x)) rounds each probability before the log: a relative error of u / p "
        "that grows without bound as p gets small, -inf once p underflows (logits ~1e3 apart); "
        "F.kl_div fed probabilities (the common distillation recipe) does the same",
        "compare against F.log_softmax (or kl_div(..., log_target=True)) or keep the logits "
        "within a few units of each other"),
    Divergence(
        "Adam eps placement", ("adam",),
        "torch.optim.Adam divides by sqrt(v)/sqrt(1 - b2^t) + eps, the course by "
        "(sqrt(v) + eps)/sqrt(1 - b2^t): the steps differ where sqrt(v) is near eps "
        "(first steps, gradients near 0)",
        "compare against torchref.optim.Adam (CourseAdam sets torch's eps to "
        "eps / sqrt(1 - b2^t) before each step), or give torch.optim.Adam "
        "eps = course_eps * sqrt(1 - b2^t) per step"),
    Divergence(
        "adaptive optimizers over many steps", ("adagrad", "rmsprop", "adam"),
        "lr g / (sqrt(h) + eps) turns a gradient that is 0 up to rounding (delta) into a step "
        "of up to lr delta / eps (3e5 delta for lr 0.03, eps 1e-7), compounded over the steps",
        "compare few steps, or run long comparisons in float64 with eps >= 1e-3"),
    Divergence(
        "batch norm eps and kernel", ("batch_norm", "batchnorm", "batchnormalization"),
        "F.batch_norm / nn.BatchNorm default to eps = 1e-5 (the course 1e-6, written 10e-7) "
        "inside sqrt(var + eps), update running_var with the unbiased variance, and compute "
        "x * a + (beta - mu * a) with a = gamma / std: ~u |x| |gamma| / std apart from the "
        "course's formula when a feature is (almost) constant over the batch",
        "pass eps=1e-6 to the native reference, compare running_var with the N/(N-1) factor, "
        "and draw features with a spread in float32 (batchnorm_case does)"),
    Divergence(
        "distillation loss in float32 at high temperature", ("distillation",),
        "the soft term alpha T^2 KL multiplies each side's float32 log-softmax rounding by "
        "T^2: up to 140x the float32 tolerance at T = 100",
        "compare the two terms separately, or the total in float64, or keep alpha T^2 <= 1"),
    Divergence(
        "max pooling over -inf", ("max_pool", "pooling(max)"),
        "where every real pixel of a window is -inf, torch routes the gradient to the first "
        "real pixel and the course to the first tap, which may be padding",
        "draw finite inputs"),
)


def divergence_notes(name: str, native: Any = None) -> list[str]:
    """The ``KNOWN_DIVERGENCES`` rows whose keywords occur in a component's ``name`` or in its
    ``native`` reference (its name or source), each as one line for a failure message."""
    try:
        source = inspect.getsource(native) if native is not None else ""
    except (OSError, TypeError):
        source = ""
    haystack = " ".join((name, getattr(native, "__name__", ""), source)).lower()
    return [f"note: the native reference is known to differ here ({d.name}): {d.what}; "
            f"{d.advice} (torchref.tolerance.KNOWN_DIVERGENCES)"
            for d in KNOWN_DIVERGENCES if any(k in haystack for k in d.keywords)]
