"""Backends built from a name and ROS-style parameters; bad parameters are named."""

import pytest

from anytouch_policy.bringup.backends import ARMS, GRIPPERS, TACTILE_SOURCES, make_gripper, make_tactile_source
from anytouch_policy.errors import ConfigError
from anytouch_policy.hardware.cameras.digit import DigitOrientation, DigitSource, DigitStream
from anytouch_policy.hardware.cameras.gelsight_mini import GelSightMiniSource
from anytouch_policy.hardware.params import config_from_params
from anytouch_policy.hardware.xarm.robotiq import RobotiqConfig


def test_ros_parameter_types_are_converted():
    source = make_tactile_source("gelsight_mini", device="/dev/v4l/by-id/x-video-index0", exposure=180,
                                 capture_fps=25, serial="", index="", white_balance_k="")
    assert isinstance(source, GelSightMiniSource)
    assert source.config.exposure == 180 and source.config.capture_fps == 25.0
    assert isinstance(source.config.capture_fps, float) and source.config.index is None
    digit = make_tactile_source("digit", serial="D20025", stream="QVGA", orientation="landscape", fps=30)
    assert isinstance(digit, DigitSource)
    assert digit.config.stream is DigitStream.QVGA and digit.config.orientation is DigitOrientation.LANDSCAPE


@pytest.mark.parametrize("params, message", [
    ({"device": "/dev/video0", "exposur": 1}, "unknown parameter.*exposur.*valid:.*exposure"),
    ({"device": "/dev/video0", "warmup_frames": 2.5}, "gelsight_mini.warmup_frames must be an integer"),
    ({"device": "/dev/video0", "allow_file": 1}, "allow_file must be true or false"),
    ({"device": "/dev/video0", "capture_fps": True}, "capture_fps must be a number"),
    ({"device": 3}, "device must be a string"),
])
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ConfigError, match=message):
        make_tactile_source("gelsight_mini", **params)


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid: digit, gelsight_mini"):
        make_tactile_source("gelsight", device="/dev/video0")
    with pytest.raises(ConfigError, match="valid: robotiq"):
        make_gripper("robotiq2f85", arm=None)


def test_tuple_fields_take_lists_and_check_items():
    config = config_from_params(RobotiqConfig, {"grasp_force": 90}, backend="robotiq")
    assert config.grasp_force == 90
    from anytouch_policy.hardware.xarm.config import XArmConfig

    with pytest.raises(ConfigError, match=r"xarm.workspace_mm\[2\] must be a number"):
        config_from_params(XArmConfig, {"ip": "1.2.3.4", "workspace_mm": [1, 0, "a", 0, 1, 0], "tilt_axis": "+y"},
                           backend="xarm")


def test_tables_are_plain_mappings_of_config_and_backend():
    for table in (TACTILE_SOURCES, ARMS, GRIPPERS):
        for name, (config_cls, backend_cls) in table.items():
            assert name.islower() and hasattr(config_cls, "__dataclass_fields__") and callable(backend_cls)
