"""`anytouch bench train` runs on real recorded episodes and reports the cache speed-up and finetune speed."""

import json

import pytest

from anytouch_policy.cli.main import main


def test_bench_train_json(expert_bags, capsys):
    code = main(["bench", "train", "--preset", "anytouch-tiny", "--bags", str(expert_bags), "--threads", "2",
                 "--finetune-steps", "2", "--batch-size", "16"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    frozen, finetune = result["frozen"], result["finetune"]
    assert result["episodes"] == 3 and result["ticks_per_epoch"] > 0
    # Times are figures, not assertions (a loaded machine reorders them); what must hold is that the cache is used:
    # the first pass encodes every window, the second takes each (episode, sensor) from disk and encodes none.
    assert frozen["epoch_cached_s"] > 0 and frozen["epoch_reencode_s"] > 0
    # the ratio is taken before the times are rounded for printing
    assert frozen["speedup"] == pytest.approx(frozen["epoch_reencode_s"] / frozen["epoch_cached_s"], rel=0.01, abs=0.1)
    assert frozen["windows_encoded"] > 0
    assert frozen["reload_windows_encoded"] == 0 and frozen["reload_hits"] == result["episodes"]  # one sensor
    assert frozen["reload_identical"] is True
    assert finetune["samples_per_s"] > 0 and finetune["samples"] == 2 * 16


def test_bench_train_can_time_fine_tuning_alone_in_autocast(expert_bags, capsys):
    code = main(["bench", "train", "--preset", "anytouch-tiny", "--bags", str(expert_bags), "--threads", "2",
                 "--finetune-steps", "2", "--batch-size", "16", "--no-frozen", "--amp"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    finetune = result["finetune"]
    assert result["frozen"] is None and finetune["amp"] is True and finetune["steps"] == 2
    seconds = finetune["seconds"]  # printed to 0.01 s: the ratio of the rounded figures is only that exact
    assert 2 / (seconds + 0.005) - 0.01 <= finetune["steps_per_s"] <= 2 / max(seconds - 0.005, 1e-3) + 0.01
    assert finetune["peak_rss_mb"] > 100  # torch alone takes more (on a GPU: peak_cuda_memory_mb)


def test_bench_train_times_a_last_n_fine_tune_on_stored_frozen_blocks(expert_bags, capsys):
    code = main(["bench", "train", "--preset", "anytouch-tiny", "--bags", str(expert_bags), "--threads", "2",
                 "--finetune-steps", "2", "--batch-size", "16", "--no-frozen", "--finetune", "last:1",
                 "--no-augment"])
    assert code == 0
    finetune = json.loads(capsys.readouterr().out)["finetune"]
    assert finetune["mode"] == "last:1" and finetune["frozen_blocks_stored"] == 1  # anytouch-tiny: 2 blocks
    assert finetune["augment"] is False
    assert finetune["setup_s"] > 0 and finetune["samples"] == 2 * 16
