"""The output-folder rule (anytouch_policy.outputs): only an empty folder or the command's own kind of folder is ever
replaced, the replacement is a swap, and everything else is refused naming the path."""

import json

import pytest
import torch

from anytouch_policy.cli.main import main
from anytouch_policy.errors import ConfigError
from anytouch_policy.model.bundle import ENCODER_BUNDLE, load_encoder_bundle, save_encoder_bundle
from anytouch_policy.model.encoder import AnyTouchEncoder
from anytouch_policy.model.runtime import TokenMode
from anytouch_policy.outputs import PLOT_SUFFIXES, check_output_dir, check_output_file, make_dir, writing_dir
from anytouch_policy.policy.bundle import read_policy_config, save_policy_bundle
from anytouch_policy.policy.config import POLICY_BUNDLE, HeadConfig, PolicySensor, PolicySpec, ReferenceMode
from anytouch_policy.policy.head import PolicyHead
from anytouch_policy.sensors import SensorType
from anytouch_policy.train.run import init_encoder_bundle


@pytest.fixture
def encoder(tmp_path):
    return init_encoder_bundle("anytouch-tiny", tmp_path / "encoder", seed=0)


def make_bundle(path, encoder_dir):
    head = PolicyHead(HeadConfig(sensors=1, embed_dim=32, reference=False, conditioning=0, hidden=8, layers=1))
    config = PolicySpec(sensors=[PolicySensor("left", SensorType.DIGIT)], frames=3, stride=1,
                        token_mode=TokenMode.SPECIFIC, conditioning=(), reference=ReferenceMode.NONE, head=head.config,
                        variant={}, training={})
    return save_policy_bundle(path, config=config, head=head, encoder_bundle=encoder_dir), head


def test_what_may_be_written(tmp_path, encoder):
    assert check_output_dir(tmp_path / "new" / "deeper", POLICY_BUNDLE) == tmp_path / "new" / "deeper"
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", POLICY_BUNDLE)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="file is a file; the output must be a folder"):
        check_output_dir(tmp_path / "file", POLICY_BUNDLE, overwrite=True)
    with pytest.raises(ConfigError, match="cannot create .*file/sub: .*file is a file"):
        check_output_dir(tmp_path / "file" / "sub", POLICY_BUNDLE)
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(ConfigError, match="link is a symbolic link"):
        check_output_dir(tmp_path / "link", POLICY_BUNDLE, overwrite=True)

    policy, _ = make_bundle(tmp_path / "policy", encoder)
    with pytest.raises(ConfigError, match="policy already holds a policy bundle; pass --overwrite to replace it"):
        check_output_dir(policy, POLICY_BUNDLE)
    check_output_dir(policy, POLICY_BUNDLE, overwrite=True)
    # an encoder bundle is not a policy bundle, nor the other way round, whatever --overwrite says
    with pytest.raises(ConfigError, match="refusing to write into .*encoder: it is not a policy bundle "
                                          r"\(config.json kind is 'anytouch-encoder'"):
        check_output_dir(encoder, POLICY_BUNDLE, overwrite=True)
    with pytest.raises(ConfigError, match="it is not an encoder bundle .*kind is 'anytouch-policy'"):
        check_output_dir(policy, ENCODER_BUNDLE, overwrite=True)
    # a bundle holding something no bundle writes is not replaced either
    (policy / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"not a policy bundle \(it also holds notes.txt\)"):
        check_output_dir(policy, POLICY_BUNDLE, overwrite=True)
    # the demo replaces nothing
    with pytest.raises(ConfigError, match="policy exists and is not empty; choose a new folder"):
        check_output_dir(policy, None, overwrite=True)


def test_replacing_is_a_swap_and_a_failure_keeps_the_old_folder(tmp_path, encoder):
    policy, _ = make_bundle(tmp_path / "policy", encoder)
    before = (policy / "config.json").read_text()
    with pytest.raises(RuntimeError, match="disk full"), writing_dir(policy, POLICY_BUNDLE, overwrite=True) as staged:
        (staged / "config.json").write_text("{}")
        raise RuntimeError("disk full")
    assert (policy / "config.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder", "policy"]  # no staging folder left behind

    with writing_dir(policy, POLICY_BUNDLE, overwrite=True) as staged:
        (staged / "config.json").write_text(json.dumps({"kind": "anytouch-policy"}))
        (staged / "model.safetensors").write_bytes(b"new")
        assert (policy / "config.json").read_text() == before  # the old bundle stays until the new one is whole
    assert (policy / "model.safetensors").read_bytes() == b"new" and not (policy / "encoder").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder", "policy"]


def test_a_folder_that_appears_meanwhile_is_not_replaced_and_nothing_is_lost(tmp_path):
    out = tmp_path / "out"
    expected = (r"out: it is not a policy bundle \(no config.json, model.safetensors; it holds theirs.txt\).*the new "
                r"policy bundle is kept in .*/\.out\.")
    with pytest.raises(ConfigError, match=expected), writing_dir(out, POLICY_BUNDLE, overwrite=False) as staged:
        (staged / "config.json").write_text("{}")
        out.mkdir()
        (out / "theirs.txt").write_text("someone else's")
    assert (out / "theirs.txt").read_text() == "someone else's"
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert (kept / "config.json").is_file()


def test_encoder_bundle_overwrite_never_touches_a_policy_bundle(tmp_path, encoder):
    """save_encoder_bundle(overwrite=True) used to rewrite config.json and model.safetensors in any folder."""
    policy, _ = make_bundle(tmp_path / "policy", encoder)
    torch.manual_seed(1)
    other = AnyTouchEncoder.from_preset("anytouch-tiny")
    with pytest.raises(ConfigError, match="policy: it is not an encoder bundle"):
        save_encoder_bundle(policy, other, overwrite=True)
    assert read_policy_config(policy).kind == "anytouch-policy"
    # an encoder bundle is replaced, by a swap: the policy's hard-linked copy keeps the old weights
    old = load_encoder_bundle(encoder).weights_sha256
    save_encoder_bundle(encoder, other, overwrite=True)
    assert load_encoder_bundle(encoder).weights_sha256 != old
    assert load_encoder_bundle(policy / "encoder").weights_sha256 == old


def test_plot_path_is_checked(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="--plot: cannot create .*file/x.png: .*file is a file"):
        check_output_file(tmp_path / "file" / "x.png", what="--plot")
    with pytest.raises(ConfigError, match="--plot .* is a folder"):
        check_output_file(tmp_path, what="--plot")
    assert check_output_file(tmp_path / "new" / "x.png") == tmp_path / "new" / "x.png"
    with pytest.raises(ConfigError, match=r"--plot .*x\.txt: the file name must end in one of \.png"):
        check_output_file(tmp_path / "x.txt", what="--plot", suffixes=PLOT_SUFFIXES)
    assert check_output_file(tmp_path / "x.PDF", what="--plot", suffixes=PLOT_SUFFIXES).name == "x.PDF"


def test_a_folder_the_system_will_not_create_is_a_config_error(tmp_path):
    """/proc takes no new folders, even from root: the refusal names the path, for every command's output."""
    for make in (lambda p: writing_dir(p, POLICY_BUNDLE, overwrite=False).__enter__(), make_dir):
        with pytest.raises(ConfigError, match="cannot create /proc/anytouch-test-out"):
            make("/proc/anytouch-test-out/x" if make is make_dir else "/proc/anytouch-test-out")


def test_sim_render_replaces_only_a_preview(tmp_path, capsys):
    out = tmp_path / "preview"
    out.mkdir()
    (out / "episode_1").mkdir()  # say, a bag folder
    args = ["sim", "render", "--out", str(out), "--sensor", "gelsight_mini", "--columns", "2", "--target-g", "5"]
    assert main(args) == 2
    assert "it is not a sensor preview folder (it also holds episode_1)" in capsys.readouterr().err
    assert (out / "episode_1").is_dir()
    (out / "episode_1").rmdir()
    assert main(args) == 0
    assert main(args) == 2
    assert "already holds a sensor preview folder; pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["gelsight_mini_left.gif", "gelsight_mini_left_strip.png"]
