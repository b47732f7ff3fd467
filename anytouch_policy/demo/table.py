"""The demo's result in the form of the paper's table 4, resolvable: every cell's mean error (g) with its 95 %
interval over the same evaluation seeds, and for each ordering the table claims the paired difference of the two
cells on those seeds, with its interval and whether it is resolved (the interval excludes 0).

Orderings claimed (cells named as in demo.config.Variant):
    dynamic < static            per column        pretrained-<mode>-dynamic  vs  pretrained-<mode>-static
    pretrained < random         freeze column     pretrained-frozen-dynamic  vs  random-frozen-dynamic
    fine-tune <= freeze         per row           <row>-finetune             vs  <row>-frozen
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from anytouch_policy.demo.config import COLUMNS, ROWS, Init, Variant
from anytouch_policy.errors import ConfigError
from anytouch_policy.eval.rollout import EvalReport
from anytouch_policy.eval.stats import Estimate, mean_ci, paired_difference
from anytouch_policy.train import TrainMode

#: The paper's table 4 (real GelSight Mini, 10 runs, 100 g -> 60 g), for the Markdown file's context.
PAPER_ROWS = [("CLIP", False, "5.22", "49.1"), ("T3", False, "2.33", "9.74"), ("AnyTouch", False, "2.45", "9.60"),
              ("AnyTouch", True, "1.56", "8.22")]
COLUMN_TITLES = {TrainMode.FINETUNE: "fine-tune", TrainMode.FROZEN: "freeze"}


@dataclass(frozen=True)
class Cell:
    """One cell: |poured - target| of every evaluation episode, in seed order."""

    seeds: tuple[int, ...]
    errors: tuple[float, ...]
    timeouts: int

    @classmethod
    def from_report(cls, report: EvalReport) -> Cell:
        return cls(seeds=tuple(e.seed for e in report.episodes), errors=tuple(float(v) for v in report.abs_errors),
                   timeouts=sum(e.timed_out for e in report.episodes))

    @property
    def estimate(self) -> Estimate:
        return mean_ci(self.errors)

    def text(self) -> str:
        extra = f" ({self.timeouts} timeout{'s' if self.timeouts > 1 else ''})" if self.timeouts else ""
        return f"{self.estimate.text()}{extra}"

    def to_dict(self) -> dict:
        est = self.estimate
        return {"mean_g": est.mean, "ci_low_g": est.low, "ci_high_g": est.high, "half_width_g": est.half_width,
                "episodes": est.n, "timeouts": self.timeouts, "seeds": list(self.seeds), "errors_g": list(self.errors)}


@dataclass(frozen=True)
class Ordering:
    """A claimed ordering `lower` < (or <=) `higher`, measured as the paired difference lower - higher."""

    claim: str
    lower: str  # cell expected to have the smaller error
    higher: str
    difference: Estimate

    @property
    def resolved(self) -> bool:
        return self.difference.resolved

    @property
    def verdict(self) -> str:
        """'resolved, holds' (interval below 0), 'resolved, reversed' (above 0) or 'not resolved'."""
        if not self.resolved:
            return "not resolved"
        return "resolved, holds" if self.difference.high < 0 else "resolved, reversed"

    def text(self) -> str:
        d = self.difference
        return (f"{self.claim}: {self.lower} - {self.higher} = {d.mean:+.2f} g, 95 % CI [{d.low:+.2f}, {d.high:+.2f}]"
                f" over {d.n} paired episodes: {self.verdict}")

    def to_dict(self) -> dict:
        return {"claim": self.claim, "lower": self.lower, "higher": self.higher,
                "difference_g": self.difference.to_dict(), "resolved": self.resolved, "verdict": self.verdict}


def claimed_orderings() -> list[tuple[str, Variant, Variant]]:
    """(claim, lower cell, higher cell) of every ordering the table claims."""
    pre, rand = Init.PRETRAINED, Init.RANDOM
    out = [(f"dynamic < static ({COLUMN_TITLES[mode]})", Variant(pre, mode, 3), Variant(pre, mode, 1))
           for mode in COLUMNS]
    out += [(f"pretrained < random ({COLUMN_TITLES[mode]})", Variant(pre, mode, 3), Variant(rand, mode, 3))
            for mode in COLUMNS]
    out += [(f"fine-tune <= freeze ({Variant(init, TrainMode.FINETUNE, frames).row})",
             Variant(init, TrainMode.FINETUNE, frames), Variant(init, TrainMode.FROZEN, frames))
            for init, frames in ROWS]
    return out


def paired(cells: Mapping[str, Cell], lower: str, higher: str) -> Estimate:
    """Paired difference lower - higher, episode by episode; the two cells must hold the same seeds in order."""
    a, b = cells[lower], cells[higher]
    if a.seeds != b.seeds:
        raise ConfigError(f"cells {lower} and {higher} were evaluated on different seeds; a paired difference needs "
                          f"the same episodes ({a.seeds[:3]}... vs {b.seeds[:3]}...)")
    return paired_difference(a.errors, b.errors)


def orderings(cells: Mapping[str, Cell]) -> list[Ordering]:
    return [Ordering(claim, lower.name, higher.name, paired(cells, lower.name, higher.name))
            for claim, lower, higher in claimed_orderings()]


@dataclass(frozen=True)
class RowLabel:
    method: str
    dynamic: bool


def table_rows(cells: Mapping[str, Cell], labels: Sequence[RowLabel]) -> list[tuple[str, str, str, str]]:
    """(method, dynamic mark, fine-tune cell, freeze cell) of each row, in ROWS order."""
    rows = []
    for (init, frames), label in zip(ROWS, labels, strict=True):
        ft, fr = (cells.get(Variant(init, mode, frames).name) for mode in COLUMNS)
        rows.append((label.method, "✓" if label.dynamic else "×", ft.text() if ft else "-", fr.text() if fr else "-"))
    return rows


def render_text(cells: Mapping[str, Cell], labels: Sequence[RowLabel], *, expert: Cell | None, header: list[str],
                ordered: Sequence[Ordering]) -> str:
    """Plain-text table for the terminal."""
    rows = table_rows(cells, labels)
    head = ("Method", "Dynamic", "Fine-tune (g)", "Freeze (g)")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [*header, line(head), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows]
    if expert is not None:
        out.append(f"scripted expert (privileged ground truth, same seeds): {expert.text()} g")
    out += ["cells: mean ± 95 % CI half-width of |poured - target|; orderings (paired, same seeds):"]
    out += [f"  {o.text()}" for o in ordered]
    return "\n".join(out)


def render_markdown(cells: Mapping[str, Cell], labels: Sequence[RowLabel], *, expert: Cell | None, title: str,
                    header: list[str], ordered: Sequence[Ordering], notes: list[str]) -> str:
    rows = table_rows(cells, labels)
    lines = [f"# {title}", "", *[part for line in header for part in (line, "")],  # one paragraph each
             "| Method | Dynamic Perception | Mean Error (g) ↓ Fine-tune | Mean Error (g) ↓ Freeze |",
             "|---|:-:|--:|--:|"]
    lines += [f"| {m} | {d} | {ft} | {fr} |" for m, d, ft, fr in rows]
    if expert is not None:
        lines.append(f"| scripted expert (ground truth) | | {expert.text()} | |")
    lines += ["", "Orderings the table claims, as paired differences on the same evaluation seeds (95 % CI; "
              "resolved = the interval excludes 0):", ""]
    lines += [f"- {o.text()}" for o in ordered]
    lines += ["", "Paper (table 4, real GelSight Mini, 10 runs; mean error only):", "",
              "| Method | Dynamic Perception | Fine-tune | Freeze |", "|---|:-:|--:|--:|"]
    lines += [f"| {m} | {'✓' if d else '×'} | {ft} | {fr} |" for m, d, ft, fr in PAPER_ROWS]
    lines += ["", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def plot_errors(cells: Mapping[str, Cell], path: Path | str, *, title: str) -> Path:
    """PNG: per-episode absolute error of each cell (dots), its mean (bar) and 95 % interval (whisker)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(1.5 * len(cells) + 2, 3.8))
    for i, cell in enumerate(cells.values()):
        est = cell.estimate
        ax.bar(i, est.mean, color="#9ecae1", width=0.6)
        if est.n > 1:
            ax.errorbar(i, est.mean, yerr=est.half_width, color="#08519c", capsize=4, lw=1.2)
        jitter = np.linspace(-0.18, 0.18, len(cell.errors)) if len(cell.errors) > 1 else [0.0]
        ax.plot(i + np.asarray(jitter), cell.errors, "k.", ms=3)
    ax.set_xticks(range(len(cells)), list(cells), rotation=20, fontsize=7, ha="right")
    ax.set_ylabel("|poured - target| (g)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
