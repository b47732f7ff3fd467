"""Shared, session-scoped inputs: short expert bags and a tiny random encoder (policy, train and bench tests), and
one quick demo run whose policies the demo and eval tests read.

Every test folder sees this file, so it imports the project inside the fixtures: collecting a pure-logic test
(control, safety) loads neither torch nor rosbags.
"""

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`cuda` tests are skipped without a CUDA device (torch is imported only when such a test was collected)."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if not torch.cuda.is_available():
        for item in marked:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture(scope="session")
def expert_bags(tmp_path_factory) -> Path:
    """Three short expert episodes (cut off after 25 ticks = 5 s, about 125 GelSight Mini frames each)."""
    from anytouch_policy.demo.record import record_expert_episodes
    from anytouch_policy.sim.params import RigConfig
    from anytouch_policy.sim.sensor_params import SensorSpec

    root = tmp_path_factory.mktemp("bags")
    record_expert_episodes(root, episodes=3, target_g=60.0, sensors=[SensorSpec.parse("gelsight_mini")],
                           config=RigConfig(max_ticks=25), seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    from anytouch_policy.train.run import init_encoder_bundle

    return init_encoder_bundle("anytouch-tiny", tmp_path_factory.mktemp("enc") / "tiny", seed=0)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """One `anytouch demo --quick` run with a "pretrained" encoder of its own (a tiny bundle initialised from another
    seed than the random row's), so all six cells are runs of their own: its policies serve the demo and eval tests."""
    from anytouch_policy.cli.main import main
    from anytouch_policy.train.run import init_encoder_bundle

    root = tmp_path_factory.mktemp("demo")
    encoder = init_encoder_bundle("anytouch-tiny", root / "encoder", seed=1)
    out = root / "run"
    assert main(["demo", "--quick", "--encoder", str(encoder), "--out", str(out), "--no-progress"]) == 0
    return out
