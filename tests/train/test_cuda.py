"""Training on a CUDA device (`cuda` tests: bench/gpu.sh runs them on a GPU machine; skipped elsewhere): a fine-tune
in bfloat16 autocast on the GPU writes a bundle whose policy decides on the GPU, in both inference precisions."""

import numpy as np
import pytest

from anytouch_policy.actions import Action
from anytouch_policy.policy.runtime import PolicyRuntime
from anytouch_policy.sensors import NATIVE_FORMATS
from anytouch_policy.train import TrainConfig, TrainMode, train


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_a_finetune_on_cuda_in_autocast_gives_a_policy_that_decides_on_cuda(expert_bags, tiny_encoder, tmp_path,
                                                                            precision):
    out = tmp_path / "policy"
    result = train(TrainConfig(bags=[expert_bags], out=out, encoder=tiny_encoder, mode=TrainMode.FINETUNE,
                               finetune="all", epochs=1, batch_size=8, episodes_per_batch=2, hidden=16, device="cuda",
                               amp=True, progress=False))
    assert np.isfinite(result.best.val_loss)
    runtime = PolicyRuntime.from_bundle(out, device="cuda", precision=precision)
    rng = np.random.default_rng(0)
    windows = {name: [rng.integers(0, 256, (NATIVE_FORMATS[kind].height, NATIVE_FORMATS[kind].width, 3),
                                   dtype=np.uint8) for _ in range(runtime.frames)] for name, kind in runtime.sensors}
    decision = runtime.decide_windows(windows, initial_g=100.0, target_g=60.0)
    assert runtime.encoder_runtime(device="cuda", precision=precision).device.type == "cuda"
    assert isinstance(decision.action, Action) and np.isfinite(decision.probs).all()
    assert decision.probs.sum() == pytest.approx(1.0, abs=1e-3)
