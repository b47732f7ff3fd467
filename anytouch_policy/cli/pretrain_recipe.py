"""anytouch pretrain-recipe --out runs/recipe

Reproduce the shipped sim-pretrained encoder from nothing (docs/pretrain.md, "The shipped recipe"): generate the
aligned sim dataset with its fixed seed, run stage 1 then a touch-only stage 2 on it, and export the bundle
(OUT/anytouch-small/) whose config.json records the recipe. Run the same command again to resume after a stop.
`--recipe tiny` runs every step in seconds (tests, smoke runs). Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json

from anytouch_policy.cli.args import NONNEGATIVE_INT, POSITIVE_INT, number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from anytouch_policy.pretrain.recipe import RECIPES

    parser.add_argument("--out", required=True, help="run folder (data/, stage1/, stage2/, the bundle, recipe.json)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="anytouch-small",
                        help="which recipe (default anytouch-small: the shipped bundle)")
    parser.add_argument("--hours", type=number(float, low=0, high=1000, low_open=True),
                        help="override the dataset's simulated hours (the bundle then differs from the shipped one)")
    parser.add_argument("--stage1-epochs", type=POSITIVE_INT, help="override stage 1's epochs")
    parser.add_argument("--stage2-epochs", type=NONNEGATIVE_INT, help="override stage 2's epochs (0: no stage 2)")
    parser.add_argument("--workers", type=NONNEGATIVE_INT, default=1,
                        help="dataset render processes and data loader workers (default 1)")
    parser.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.pretrain.recipe import RECIPES, run_recipe

    recipe = RECIPES[args.recipe].replace(hours=args.hours, stage1_epochs=args.stage1_epochs,
                                          stage2_epochs=args.stage2_epochs)
    overrides = [f"--{name.replace('_', '-')} {value:g}" for name, value in
                 (("hours", args.hours), ("stage1_epochs", args.stage1_epochs), ("stage2_epochs", args.stage2_epochs))
                 if value is not None]
    command = " ".join(["anytouch pretrain-recipe --out DIR --recipe", args.recipe, *overrides])
    summary = run_recipe(recipe, args.out, workers=args.workers, threads=args.threads,
                         progress=not args.no_progress, device=args.device, command=command)
    print(json.dumps({k: summary[k] for k in ("bundle", "weights_sha256", "timings", "steps")}))
    return 0
