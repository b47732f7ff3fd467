"""The demo's result in the form of the paper's table 4: mean error (g) +/- std, fine-tune vs freeze, per row
dynamic (3-frame window) or static (1 frame repeated)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The paper's table 4 (real GelSight Mini, 10 runs, 100 g -> 60 g), for the Markdown file's context.
PAPER_ROWS = [("CLIP", False, "5.22", "49.1"), ("T3", False, "2.33", "9.74"), ("AnyTouch", False, "2.45", "9.60"),
              ("AnyTouch", True, "1.56", "8.22")]


@dataclass(frozen=True)
class Cell:
    mean_g: float
    std_g: float
    episodes: int
    timeouts: int

    def text(self) -> str:
        extra = f" ({self.timeouts} timeouts)" if self.timeouts else ""
        return f"{self.mean_g:.2f} ± {self.std_g:.2f}{extra}"


def table_rows(cells: dict[tuple[str, bool], Cell], *, method: str) -> list[tuple[str, str, str, str]]:
    """(method, dynamic mark, fine-tune cell, freeze cell) for static then dynamic, as the paper orders them."""
    rows = []
    for dynamic in (False, True):
        ft, fr = cells.get(("finetune", dynamic)), cells.get(("frozen", dynamic))
        rows.append((method, "✓" if dynamic else "×", ft.text() if ft else "-", fr.text() if fr else "-"))
    return rows


def render_text(cells: dict[tuple[str, bool], Cell], *, method: str, expert: Cell | None, title: str) -> str:
    """Plain-text table for the terminal."""
    rows = table_rows(cells, method=method)
    head = ("Method", "Dynamic", "Fine-tune (g)", "Freeze (g)")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [title, line(head), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows]
    if expert is not None:
        out.append(f"scripted expert (privileged ground truth, same seeds): {expert.text()} g")
    return "\n".join(out)


def render_markdown(cells: dict[tuple[str, bool], Cell], *, method: str, expert: Cell | None, title: str,
                    notes: list[str]) -> str:
    rows = table_rows(cells, method=method)
    lines = [f"# {title}", "", "| Method | Dynamic Perception | Mean Error (g) ↓ Fine-tune | Mean Error (g) ↓ Freeze |",
             "|---|:-:|--:|--:|"]
    lines += [f"| {m} | {d} | {ft} | {fr} |" for m, d, ft, fr in rows]
    if expert is not None:
        lines.append(f"| scripted expert (ground truth) | | {expert.text()} | |")
    lines += ["", "Paper (table 4, real GelSight Mini, 10 runs; mean error only):", "",
              "| Method | Dynamic Perception | Fine-tune | Freeze |", "|---|:-:|--:|--:|"]
    lines += [f"| {m} | {'✓' if d else '×'} | {ft} | {fr} |" for m, d, ft, fr in PAPER_ROWS]
    lines += ["", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def plot_errors(errors: dict[str, list[float]], path: Path | str, *, title: str) -> Path:
    """PNG: per-episode absolute error of each policy (dots) with the mean (bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(1.6 * len(errors) + 2, 3.6))
    for i, values in enumerate(errors.values()):
        ax.bar(i, float(np.mean(values)), color="#9ecae1", width=0.6)
        jitter = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else [0.0]
        ax.plot(i + np.asarray(jitter), values, "k.", ms=4)
    ax.set_xticks(range(len(errors)), list(errors), rotation=15, fontsize=8)
    ax.set_ylabel("|poured - target| (g)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
