"""What the evaluation benches (transfer, targets) share: a cell's figures with 95 % intervals, paired differences
of cells on the same seeds, and the policy training they run.

A cell is one EvalReport (a policy or the expert, one rig setting, the EVAL seeds of one run seed); two cells of the
same run seed and episode count play the same episodes, so they compare episode by episode (eval.stats).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from anytouch_policy.errors import ConfigError
from anytouch_policy.eval.rollout import EvalReport
from anytouch_policy.eval.stats import Estimate, mean_ci, paired_difference


def cell(report: EvalReport) -> dict:
    """Mean |error| with its 95 % interval, the signed mean, timeouts and every episode's |error| (g)."""
    summary = report.summary()
    return {"mean_abs_error_g": mean_ci(report.abs_errors).to_dict(), "mean_error_g": summary["mean_error_g"],
            "timeouts": summary["timeouts"], "episodes": len(report.episodes),
            "abs_errors_g": [e.abs_error_g for e in report.episodes]}


def paired(a: EvalReport, b: EvalReport) -> Estimate:
    """|error| of `a` minus that of `b`, episode by episode: both must have played the same seeds."""
    seeds_a, seeds_b = [e.seed for e in a.episodes], [e.seed for e in b.episodes]
    if seeds_a != seeds_b:
        raise ConfigError("a paired difference needs the same episode seeds on both sides")
    return paired_difference(a.abs_errors.tolist(), b.abs_errors.tolist())


def cell_text(figures: dict) -> str:
    """'m ± h g' of a cell() (the 95 % half-width), with its timeouts."""
    e = figures["mean_abs_error_g"]
    timeouts = f" ({figures['timeouts']} timeouts)" if figures["timeouts"] else ""
    return f"{e['mean']:.2f} ± {e['half_width']:.2f}{timeouts}"


def difference_text(estimate: Estimate) -> str:
    """A paired difference: mean [95 % interval], and whether the interval excludes 0."""
    return (f"{estimate.mean:+.2f} [{estimate.low:+.2f}, {estimate.high:+.2f}]"
            f"{' resolved' if estimate.resolved else ' not resolved'}")


def train_policy(bags: Path, out: Path, *, encoder: Path, mode: str, epochs: int | None, token: str, seed: int,
                 threads: int | None, cache: Path, log: Callable[[str], None]) -> Path:
    """One policy bundle from `bags` on `encoder` (dynamic 3-frame windows, episode-start reference, conditioned on
    the grams), as `anytouch train` writes it; as the demo trains: the last epoch is kept (`--select last`), and a
    fine-tune runs in float32, so the cells are the same on every CPU."""
    from anytouch_policy.model.runtime import TokenMode
    from anytouch_policy.train import TrainConfig, TrainMode, train
    from anytouch_policy.train.metrics import Selection

    train(TrainConfig(bags=[bags], out=out, mode=TrainMode(mode), encoder=encoder, epochs=epochs,
                      token_mode=TokenMode(token), seed=seed,
                      threads=threads, cache_dir=cache, progress=False, overwrite=True, select=Selection.LAST),
          log=lambda text: log("  " + text.replace("\n", "\n  ")))
    return out

