"""Validation metrics (accuracy, per-class recall, confusion matrix) and the training-curve plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from anytouch_policy.actions import Action

LABELS = [a.label for a in Action]


def confusion(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(3, 3) counts: row = true action, column = predicted action."""
    out = np.zeros((len(Action), len(Action)), np.int64)
    np.add.at(out, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return out


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    val_loss: float
    confusion: np.ndarray  # validation, row = true, column = predicted
    seconds: float
    lr: float = 0.0
    val_remaining_rmse_g: float | None = None  # heads with a "remaining" output: its validation RMSE in grams

    @property
    def accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else 0.0

    @property
    def recall(self) -> dict[str, float]:
        rows = self.confusion.sum(axis=1)
        return {label: float(self.confusion[i, i] / rows[i]) if rows[i] else float("nan")
                for i, label in enumerate(LABELS)}

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes present in validation."""
        values = [v for v in self.recall.values() if not np.isnan(v)]
        return float(np.mean(values)) if values else 0.0

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "train_loss": self.train_loss, "val_loss": self.val_loss,
                "val_accuracy": self.accuracy, "val_balanced_accuracy": self.balanced_accuracy,
                "val_recall": self.recall, "val_confusion": self.confusion.tolist(), "seconds": self.seconds,
                "lr": self.lr, "val_remaining_rmse_g": self.val_remaining_rmse_g}

    def report(self) -> str:
        """The per-epoch lines printed during training."""
        recall = "  ".join(f"{k} {v:.2f}" for k, v in self.recall.items())
        lines = [f"epoch {self.epoch}: train loss {self.train_loss:.4f}  val loss {self.val_loss:.4f}  "
                 f"val acc {self.accuracy:.3f}  balanced {self.balanced_accuracy:.3f}  recall {recall}"
                 + ("" if self.val_remaining_rmse_g is None else
                    f"  remaining rmse {self.val_remaining_rmse_g:.2f} g") + f"  ({self.seconds:.0f} s)",
                 "  confusion (rows true, cols predicted)  " + " ".join(f"{lab:>8}" for lab in LABELS)]
        for i, lab in enumerate(LABELS):
            lines.append(f"  {lab:>37}  " + " ".join(f"{int(v):>8d}" for v in self.confusion[i]))
        return "\n".join(lines)


class Selection(StrEnum):
    """Which epoch becomes the bundle. VAL_LOSS: the lowest validation loss (class-weighted cross-entropy), smoother
    than accuracies over a few validation episodes. LAST: the end of the cosine schedule; in imitation learning the
    validation loss of single actions says little about closed-loop success, so a fixed schedule is often the
    better choice when the validation set is a handful of episodes."""

    VAL_LOSS = "val_loss"
    LAST = "last"


@dataclass
class History:
    epochs: list[EpochMetrics] = field(default_factory=list)
    select: Selection = Selection.VAL_LOSS

    def best(self) -> EpochMetrics:
        """The epoch `select` chooses."""
        if self.select is Selection.LAST:
            return self.epochs[-1]
        return min(self.epochs, key=lambda m: m.val_loss)

    def to_list(self) -> list[dict]:
        return [m.to_dict() for m in self.epochs]


def plot_curves(history: History, path: Path | str, *, title: str = "") -> Path:
    """PNG with the loss curves (train, validation) and the validation accuracies per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [m.epoch for m in history.epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [m.train_loss for m in history.epochs], "o-", label="train")
    ax_loss.plot(epochs, [m.val_loss for m in history.epochs], "o-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy (class-weighted)")
    ax_loss.legend()
    ax_acc.plot(epochs, [m.accuracy for m in history.epochs], "o-", label="accuracy")
    ax_acc.plot(epochs, [m.balanced_accuracy for m in history.epochs], "o-", label="balanced accuracy")
    for label in LABELS:
        ax_acc.plot(epochs, [m.recall[label] for m in history.epochs], ":", label=f"recall {label}")
    best = history.best()
    ax_acc.axvline(best.epoch, color="grey", lw=0.8, ls="--")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylim(0, 1)
    ax_acc.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
