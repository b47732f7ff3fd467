"""One weight-decay rule and one warm-up + cosine schedule for everything that trains (policy and pretraining)."""

import pytest
import torch
from torch import nn

from anytouch_policy.model import AnyTouchEncoder
from anytouch_policy.model.optim import build_schedule, param_groups, warmup_cosine


def _names(module, group):
    names = {id(p): n for n, p in module.named_parameters()}
    return {names[id(p)] for p in group["params"]}


def test_encoder_groups_keep_embeddings_tokens_norms_and_biases_out_of_decay():
    encoder = AnyTouchEncoder.from_preset("anytouch-tiny")
    decay, plain = param_groups(encoder, weight_decay=0.1)
    assert {"class_embedding", "positional_embedding", "sensor_tokens", "ln_pre.weight", "ln_pre.bias",
            "transformer.resblocks.0.attn.in_proj_bias"} <= _names(encoder, plain)
    assert _names(encoder, decay) >= {"tubelet.weight", "proj", "transformer.resblocks.0.mlp.c_fc.weight"}
    assert decay["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert len(decay["params"]) + len(plain["params"]) == len(list(encoder.parameters()))


def test_embedding_tables_shared_and_frozen_parameters_and_the_lr():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.words = nn.Embedding(10, 4)  # a 2-D table: no decay, whatever its name
            self.fc = nn.Linear(4, 4)
            self.tied = self.fc  # the same parameters twice: listed once
            self.logit_scale = nn.Parameter(torch.tensor(1.0))
            self.frozen = nn.Linear(4, 4).requires_grad_(False)

    net = Net()
    decay, plain = param_groups(net, weight_decay=0.05, lr=3e-4)
    assert _names(net, decay) == {"fc.weight"}
    assert _names(net, plain) == {"words.weight", "fc.bias", "logit_scale"}
    assert decay["lr"] == plain["lr"] == 3e-4
    assert "lr" not in param_groups(net, weight_decay=0.05)[0]  # the optimizer's default applies
    only_norm = param_groups(nn.LayerNorm(4), weight_decay=0.1)
    assert len(only_norm) == 1 and only_norm[0]["weight_decay"] == 0.0  # an empty group is left out


@pytest.mark.parametrize("floor", [0.0, 0.05])
def test_schedule_warms_up_linearly_then_follows_half_a_cosine_down_to_its_floor(floor):
    factors = [warmup_cosine(s, warmup_steps=4, total_steps=20, floor=floor) for s in range(25)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))  # never rises after the warm-up
    assert factors[12] == pytest.approx(floor + (1 - floor) * 0.5)  # half way down at the middle of the cosine
    assert factors[20:] == pytest.approx([floor] * 5)  # the floor, at the end and after it


def test_build_schedule_steps_the_optimizers_lr():
    p = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([p], lr=1e-3)
    schedule = build_schedule(optimizer, warmup_steps=2, total_steps=6, floor=0.05)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[:2] == pytest.approx([5e-4, 1e-3]) and optimizer.param_groups[0]["lr"] == pytest.approx(5e-5)
