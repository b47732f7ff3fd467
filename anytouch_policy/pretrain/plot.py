"""The loss plot of a pretraining run: every loss term per step (and its epoch means), from OUT/metrics.jsonl.

Terms come from different batch kinds (static, video, matching), so each term is drawn at the steps that produced
it, raw and as a moving average, with the mean of each epoch as dots.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Terms worth a panel, in order (the logged pair counts, lr and p_universal are settings, not losses).
LOSS_TERMS = ("loss", "rec_static", "rec_dynamic", "pred_next", "match", "cross_sensor_nce", "align")
_SMOOTH = 25


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def epoch_means(rows: list[dict], term: str) -> list[tuple[int, float]]:
    """(epoch, mean of the term over the steps of that epoch that logged it)."""
    sums: dict[int, list[float]] = {}
    for row in rows:
        if term in row:
            sums.setdefault(row["epoch"], []).append(float(row[term]))
    return [(epoch, sum(v) / len(v)) for epoch, v in sorted(sums.items())]


def plot_losses(metrics: Path | str, png: Path | str, *, title: str = "") -> Path | None:
    """Write the PNG; None when the metrics hold no step yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = read_metrics(Path(metrics))
    terms = [t for t in LOSS_TERMS if any(t in r for r in rows)]
    if not terms:
        return None
    fig, axes = plt.subplots(len(terms), 1, figsize=(8, 2.2 * len(terms)), sharex=True, squeeze=False)
    for ax, term in zip(axes[:, 0], terms, strict=True):
        steps = np.array([r["step"] for r in rows if term in r])
        values = np.array([float(r[term]) for r in rows if term in r])
        ax.plot(steps, values, lw=0.5, alpha=0.35, color="tab:blue")
        if len(values) >= _SMOOTH:
            smooth = np.convolve(values, np.ones(_SMOOTH) / _SMOOTH, mode="valid")
            ax.plot(steps[_SMOOTH - 1:], smooth, lw=1.2, color="tab:blue", label=f"mean of {_SMOOTH} steps")
        ends = {r["epoch"]: r["step"] for r in rows}
        means = epoch_means(rows, term)
        ax.plot([ends[e] for e, _ in means], [m for _, m in means], "o", color="tab:red", ms=4, label="epoch mean")
        ax.set_ylabel(term)
        if values.min() > 0:
            ax.set_yscale("log")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    png = Path(png)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
