"""anytouch pretrain-recipe --out runs/recipe

Reproduce the shipped sim-pretrained encoder from nothing (docs/pretrain.md, "The shipped recipe"): generate the
aligned sim dataset with its fixed seed, run stage 1 then a touch-only stage 2 on it, and export the bundle
(OUT/anytouch-small/) whose config.json records the recipe. Run the same command again to resume after a stop.
`--recipe tiny` runs every step in seconds (tests, smoke runs). Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json

from anytouch_policy.cli.args import Flags
from anytouch_policy.pretrain.recipe import RecipeRun

FLAGS = Flags(RecipeRun, "out", "recipe", "hours", "stage1_epochs", "stage2_epochs", "workers", "threads", "device",
              "progress")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    FLAGS.add_to(parser)


def run(args: argparse.Namespace) -> int:
    from anytouch_policy.pretrain.recipe import RECIPES, run_recipe

    request = FLAGS.build(args)
    recipe = RECIPES[request.recipe].replace(**request.overrides)
    summary = run_recipe(recipe, request.out, workers=request.workers, threads=request.threads,
                         progress=request.progress, device=request.device, command=request.command)
    print(json.dumps({k: summary[k] for k in ("bundle", "weights_sha256", "timings", "steps")}))
    return 0
