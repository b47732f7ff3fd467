"""Shared, session-scoped inputs: short expert bags and a tiny random encoder (policy, train and bench tests), and
one quick demo run whose policies the demo and eval tests read.

Every test folder sees this file, so it imports the project inside the fixtures: collecting a pure-logic test
(control, safety) loads neither torch nor rosbags.
"""

from pathlib import Path

import pytest

#: Test files that read the session's quick demo run (`demo` fixture): one xdist worker builds it for all of them.
DEMO_READERS = {"tests/demo/test_cli.py", "tests/eval/test_cli.py", "tests/eval/test_pool.py"}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under pytest-xdist (`make test` runs the tests that start no ROS node on two workers) a file runs whole on one
    worker, so its module fixtures are built once, and the files that read the quick demo share one worker."""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "demo" if path in DEMO_READERS else path

    return FileScheduling(config, log)


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


def _mini_policy(path: Path, encoder: Path, token_mode: str) -> Path:
    """A policy bundle over the one sensor `anytouch demo` and `sim record` name by default, gelsight_mini_left
    (type gelsight_mini), on `encoder` with an untrained head."""
    import torch

    from anytouch_policy.policy.bundle import save_policy_bundle
    from anytouch_policy.policy.config import HeadConfig, PolicySensor, PolicySpec, ReferenceMode
    from anytouch_policy.policy.head import PolicyHead
    from anytouch_policy.sensors import SensorType

    torch.manual_seed(0)
    head_config = HeadConfig(sensors=1, embed_dim=32, reference=True, conditioning=2, hidden=16, layers=1)
    head = PolicyHead(head_config)
    config = PolicySpec(sensors=(PolicySensor("gelsight_mini_left", SensorType.GELSIGHT_MINI),), frames=3, stride=1,
                        token_mode=token_mode, conditioning=("initial_g", "target_g"),
                        reference=ReferenceMode.EPISODE_START, head=head_config,
                        variant={"mode": "frozen", "dynamic": True}, training={"note": "test fixture: untrained"})
    return save_policy_bundle(path, config=config, head=head, encoder_bundle=encoder)


@pytest.fixture(scope="session")
def mini_policy(tmp_path_factory, tiny_encoder) -> Path:
    """The demo's sensor with specific tokens: what a node set must run without being told its sensors."""
    return _mini_policy(tmp_path_factory.mktemp("bundles") / "policy-mini", tiny_encoder, "specific")


@pytest.fixture(scope="session")
def mini_policy_universal(tmp_path_factory, tiny_encoder) -> Path:
    """The demo's sensor with the universal token: what another sensor model may stand in for."""
    return _mini_policy(tmp_path_factory.mktemp("bundles") / "policy-mini-universal", tiny_encoder, "universal")
