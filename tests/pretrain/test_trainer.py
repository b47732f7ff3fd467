"""Optimisation, resume, outputs, the universal-token schedule in the loop, the CLI and torchrun."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anytouch_policy.cli.main import main
from anytouch_policy.distributed import DistContext
from anytouch_policy.errors import ConfigError, TrainingError
from anytouch_policy.model import EncoderRuntime, load_encoder_bundle
from anytouch_policy.model.optim import build_optimizer, warmup_cosine
from anytouch_policy.pretrain import build
from anytouch_policy.pretrain.checkpoint import read_checkpoint
from anytouch_policy.pretrain.config import Stage
from anytouch_policy.pretrain.dataset import MatchBatch, TouchBatch, collate
from anytouch_policy.pretrain.masking import random_tube_mask, universal_probability
from anytouch_policy.pretrain.trainer import _Run, run_pretrain
from anytouch_policy.sensors import SensorType

ROOT = Path(__file__).resolve().parents[2]


def _fixed_batches(dataset):
    """The first batch of every pool, epoch 0."""
    out = {}
    for batch in dataset.epoch_plan(0):
        name = dataset.pools[batch[0][0]].name
        if name not in out:
            out[name] = collate([dataset[key] for key in batch])
    return out


def _optimise(objective, batches, steps):
    optimizer = build_optimizer(objective, lr=2e-3, weight_decay=0.0, betas=(0.9, 0.99))
    masks = {name: random_tube_mask(b.frames.shape[0], 16, 0.75, generator=torch.Generator().manual_seed(0))
             for name, b in batches.items() if isinstance(b, TouchBatch)}
    history = []
    for _ in range(steps):
        row = {}
        for name, batch in batches.items():
            out = objective(batch, masks.get(name))
            optimizer.zero_grad()
            out["loss"].backward()
            optimizer.step()
            objective.after_step()
            row |= {f"{name}/{k}": float(v.detach()) for k, v in out.items() if not k.startswith(("pairs", "logit"))}
        history.append(row)
    return history


def _assert_all_decrease(history):
    first, last = history[0], history[-1]
    worse = {k: (first[k], last[k]) for k in first if not last[k] < first[k]}
    assert not worse, worse


def test_a_few_steps_reduce_every_stage1_term(tmp_path, synth, dataset_dir):
    config = synth.tiny_config(Stage.MASKED, tmp_path, data=(str(dataset_dir),), augment=False)
    torch.manual_seed(0)
    encoder, _ = build.build_encoder(config)
    dataset = build.build_dataset(config, encoder.config, None)
    objective = build.build_objective(config, encoder, None, build.build_decoder(config, encoder.config))
    history = _optimise(objective, _fixed_batches(dataset), 12)
    assert {"touch:static/rec_static", "touch:video/rec_dynamic", "touch:video/pred_next"} <= set(history[0])
    _assert_all_decrease(history)


def test_a_few_steps_reduce_every_stage2_term(tmp_path, synth, dataset_dir):
    config = synth.tiny_config(Stage.ALIGN, tmp_path, data=(str(dataset_dir),), augment=False, batch_size=12)
    torch.manual_seed(0)
    towers = build.build_towers(config)
    encoder, _ = build.build_encoder(config, towers)
    dataset = build.build_dataset(config, encoder.config, towers)
    objective = build.build_objective(config, encoder, towers, build.build_decoder(config, encoder.config))
    batches = _fixed_batches(dataset)
    static = batches["touch:static"]
    assert 2 <= int(static.has_vision.sum()) < 12 and int((static.has_vision & static.has_text).sum()) >= 2
    history = _optimise(objective, batches, 12)
    terms = {k.split("/")[1] for k in history[0]}
    assert {"touch_to_vision", "vision_to_touch", "touch_to_text", "text_to_touch", "vision_to_text",
            "text_to_vision", "match", "rec_static"} <= terms
    _assert_all_decrease(history)


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path, synth, dataset_dir):
    kw = dict(data=(str(dataset_dir),), batch_size=12, epochs=2)  # 6 steps per epoch
    full = run_pretrain(synth.tiny_config(Stage.ALIGN, tmp_path / "full", **kw))
    assert full.finished and full.steps == len(full.history) == full.total_steps
    cut = 4  # inside the first epoch
    first = run_pretrain(synth.tiny_config(Stage.ALIGN, tmp_path / "cut", stop_after=cut, **kw))
    assert not first.finished and first.steps == cut and first.bundle is None
    rest = run_pretrain(synth.tiny_config(Stage.ALIGN, tmp_path / "cut", resume=True, **kw))
    assert rest.finished and [r["step"] for r in rest.history] == list(range(cut + 1, full.steps + 1))
    for a, b in zip(full.history[cut:], rest.history, strict=True):
        assert a == b  # every term, lr and p_u bit for bit
    left = load_encoder_bundle(full.bundle).encoder.state_dict()
    right = load_encoder_bundle(rest.bundle).encoder.state_dict()
    assert all(torch.equal(left[k], right[k]) for k in left)
    rows = [json.loads(r) for r in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, full.steps + 1))
    # half an epoch (3 steps) of linear warm-up, then cosine to 0, per iteration
    lrs = [r["lr"] for r in full.history]
    assert lrs == [pytest.approx(2e-4 * warmup_cosine(s, warmup_steps=3, total_steps=12)) for s in range(12)]
    assert lrs[:4] == [pytest.approx(v) for v in (2e-4 / 3, 4e-4 / 3, 2e-4, 2e-4)] and lrs[-1] < 1e-5


def test_output_bundle_and_run_guards(tmp_path, synth, dataset_dir):
    config = synth.tiny_config(Stage.MASKED, tmp_path / "run", data=(str(dataset_dir),), epochs=1,
                               universal_max=0.5)
    result = run_pretrain(config)
    bundle = load_encoder_bundle(result.bundle)
    assert bundle.source.format == "anytouch-pretrain-stage1" and bundle.source.path == "preset:anytouch-tiny"
    assert bundle.trained_slots == (1, 3, SensorType.UNIVERSAL)  # digit, gelsight_mini and the universal token
    assert (tmp_path / "run" / "mae_decoder" / "model.safetensors").is_file()
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["bundle"]["weights_sha256"] == result.weights_sha256 == bundle.weights_sha256
    runtime = EncoderRuntime.from_bundle(result.bundle, device="cpu")
    frame = synth.pattern(1)
    assert runtime.embed([[frame] * 3], ["digit"]).shape == (1, 32)
    with pytest.raises(ConfigError, match="already holds a pretrain run; pass --resume to continue it"):
        run_pretrain(config)
    # stage 2 from that bundle and its decoder; a changed setting refuses to resume
    s2 = synth.tiny_config(Stage.ALIGN, tmp_path / "s2", data=(str(dataset_dir),), preset=None,
                           init=str(result.bundle), init_decoder=str(tmp_path / "run" / "mae_decoder"), epochs=1,
                           stop_after=1)
    run_pretrain(s2)
    changed = synth.tiny_config(Stage.ALIGN, tmp_path / "s2", data=(str(dataset_dir),), preset=None,
                                init=str(result.bundle), init_decoder=str(tmp_path / "run" / "mae_decoder"),
                                epochs=1, resume=True, lr=1e-3)
    with pytest.raises(ConfigError, match=r"different settings: \['lr'\]"):
        run_pretrain(changed)


def test_universal_replacement_follows_the_schedule_in_the_loop(tmp_path, synth, dataset_dir):
    run = _Run(synth.tiny_config(Stage.ALIGN, tmp_path, data=(str(dataset_dir),), epochs=50, stage2_mae=False),
               DistContext())
    total = run.total_steps
    frames = torch.zeros(16, 1, 3, 56, 56)
    counts = []
    for step in range(0, total, 2):
        run.step = step
        batch = TouchBatch(frames, torch.full((16,), 1), torch.zeros(16, dtype=torch.bool),
                           torch.zeros(16, dtype=torch.bool), None, None)
        prepared, _, p_u = run._prepare(batch)
        assert p_u == universal_probability(step, total, 0.75)
        counts.append((p_u, int((prepared.sensor == SensorType.UNIVERSAL).sum())))
        match = MatchBatch(frames, frames, frames, *(torch.full((16,), 3) for _ in range(3)))
        prepared, _, _ = run._prepare(match)
        counts.append((p_u, sum(int((s == SensorType.UNIVERSAL).sum()) for s in
                                (prepared.anchor_sensor, prepared.positive_sensor, prepared.negative_sensor)) / 3))
    assert counts[0] == (0.0, 0)
    quarters = [counts[i * len(counts) // 4:(i + 1) * len(counts) // 4] for i in range(4)]
    for part in quarters:  # observed rate against the mean scheduled p in each quarter of the run
        expected = sum(p for p, _ in part) / len(part)
        observed = sum(n for _, n in part) / (16 * len(part))
        assert abs(observed - expected) < 0.05, (expected, observed)


def test_cli_stage1_on_recorded_bags(tmp_path, synth, capsys):
    synth.write_episode(tmp_path / "bags", "ep0", frames=14, sensors={"left": "gelsight_mini"})
    out = tmp_path / "adapt"
    code = main(["pretrain", "--stage", "1", "--bags", str(tmp_path / "bags"), "--preset", "anytouch-tiny",
                 "--out", str(out), "--epochs", "1", "--batch-size", "4", "--decoder-width", "32",
                 "--decoder-layers", "1", "--decoder-heads", "2", "--no-progress", "--device", "cpu"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["finished"] and printed["steps"] == 6  # 11 video + 11 static clips in batches of 4
    bundle = load_encoder_bundle(out / "encoder")
    assert bundle.trained_slots == (3, SensorType.UNIVERSAL)
    bags = json.loads((out / "run.json").read_text())["bags"]
    assert bags["episodes"] == 1 and bags["clips"] == 22
    code = main(["pretrain", "--stage", "2", "--bags", str(tmp_path / "bags"), "--preset", "anytouch-tiny",
                 "--out", str(tmp_path / "x")])
    assert code == 2 and "stage 2 needs --data" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_ranks(tmp_path, dataset_dir):
    from anytouch_policy.pretrain.clip_towers import TINY_CLIP_CONFIG

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "anytouch_policy.cli.main", "pretrain", "--stage", "2", "--data",
           str(dataset_dir), "--preset", "anytouch-tiny", "--clip-arch", str(TINY_CLIP_CONFIG), "--out", str(out),
           "--epochs", "1", "--batch-size", "6", "--decoder-width", "32", "--decoder-layers", "1",
           "--decoder-heads", "2", "--lora-r", "4", "--no-progress", "--device", "cpu", "--save-every", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                               "TMPDIR": str(tmp_path)})  # torchrun's logs
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and printed[0]["finished"]  # only the main rank reports
    summary = json.loads((out / "run.json").read_text())
    assert summary["world_size"] == 2
    # 12 static + 12 video samples in batches of 6, as many anchors in batches of 3: 12 batches, 6 per rank
    assert summary["steps"] == summary["steps_per_epoch"] == 6
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["loss"] == r["loss"] for r in rows)  # no NaN
    load_encoder_bundle(out / "encoder")


def test_overwrite_replaces_a_pretrain_run_only(tmp_path, synth, dataset_dir):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.md").write_text("mine")
    foreign = synth.tiny_config(Stage.MASKED, notes, data=(str(dataset_dir),), epochs=1, overwrite=True)
    with pytest.raises(ConfigError, match=r"notes: it is not a pretrain run \(no metrics.jsonl; it holds plan.md\)"):
        run_pretrain(foreign)
    assert sorted(p.name for p in notes.iterdir()) == ["plan.md"]
    config = synth.tiny_config(Stage.MASKED, tmp_path / "run", data=(str(dataset_dir),), epochs=1, stop_after=2)
    run_pretrain(config)
    again = run_pretrain(dataclasses.replace(config, stop_after=1, overwrite=True))
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert again.steps == 1 and len(rows) == 1  # a fresh run, not rows appended to the old one


def test_a_non_finite_loss_stops_pretraining_before_a_checkpoint(tmp_path, synth, dataset_dir, monkeypatch):
    from anytouch_policy.pretrain import trainer

    config = synth.tiny_config(Stage.MASKED, tmp_path / "run", data=(str(dataset_dir),), epochs=1, save_every=1)
    real_step = trainer._Run._train_step
    calls = []

    def step(self, batch):
        out = real_step(self, batch)
        calls.append(out)
        return out | {"loss": float("nan")} if len(calls) == 2 else out

    monkeypatch.setattr(trainer._Run, "_train_step", step)
    with pytest.raises(TrainingError, match="the pretraining loss is not finite .nan. at step 2"):
        run_pretrain(config)
    saved = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert saved["step"] == 1 and not (tmp_path / "run" / "encoder").exists()
