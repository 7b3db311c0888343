"""The lines a training run prints and the summaries it writes (``scripts/train.py``)."""

from __future__ import annotations

EPOCH_LINE_LEGEND = ("each epoch: loss and accuracy on the training and validation sets, "
                     "measured after the epoch; the epoch's learning rate; seconds of "
                     "training in that epoch (the test set is evaluated once, at the end)")

# metrics.csv's columns, in this order (one row per epoch and implementation)
COLUMNS = ("epoch", "impl", "lr", "train_loss", "train_eval_loss", "train_acc", "val_loss",
           "val_acc", "train_time_s")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def epoch_line(history: list[dict], n_impls: int) -> str:
    """The last epoch's records of ``history`` (one per implementation) as one line.

    Losses and accuracies are those measured after the epoch (``train_eval_loss``,
    not the running mean over its steps) and the time is that epoch's, not the total.
    """
    records, earlier = history[-n_impls:], history[:-n_impls]
    parts = []
    for r in records:
        before = next((p["train_time_s"] for p in reversed(earlier) if p["impl"] == r["impl"]),
                      0.0)
        parts.append(f"{r['impl']}: train loss {r['train_eval_loss']:.4f} acc "
                     f"{r['train_acc']:.4f}, val loss {_fmt(r['val_loss'])} acc "
                     f"{_fmt(r['val_acc'])}, lr {r['lr']:.3g}, "
                     f"{r['train_time_s'] - before:.1f}s")
    return f"epoch {records[0]['epoch']}  " + "  |  ".join(parts)


def summary_line(history: list[dict], n_impls: int, test: dict | None = None) -> str:
    """One closing line: epochs, the test result of the model kept, total training time."""
    if not history:
        return "no epoch completed"
    records = history[-n_impls:]
    parts = []
    for r in records:
        t = (test or {}).get(r["impl"])
        result = "" if t is None else (
            f"test acc {t['test_acc']:.4f} (loss {t['test_loss']:.4f}) with the "
            f"{t['weights']} weights (epoch {t['epoch']}), ")
        parts.append(f"{r['impl']} {result}{r['train_time_s']:.1f}s training in all")
    return f"after epoch {records[0]['epoch']}: " + "; ".join(parts)


def drift_report(drift: list[dict]) -> dict:
    """Largest and final loss / parameter differences of a lockstep run."""
    if not drift:
        return {}
    return {"steps": len(drift),
            "max_loss_diff": max(d["loss_diff"] for d in drift),
            "max_param_diff": max(d["param_diff"] for d in drift),
            "final_loss_diff": drift[-1]["loss_diff"],
            "final_param_diff": drift[-1]["param_diff"]}
