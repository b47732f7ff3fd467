"""Actions and sensor names parse both ways and reject unknown names with the valid list."""

import pytest

from anytouch_policy.actions import Action
from anytouch_policy.errors import ConfigError
from anytouch_policy.sensors import SensorType


def test_action_labels_roundtrip_and_steps():
    for action in Action:
        assert Action.from_label(action.label) is action
    assert Action.POUR.tilt_step_deg(0.25) == pytest.approx(0.25)
    assert Action.RETRACT.tilt_step_deg(0.25) == pytest.approx(-0.25)
    assert Action.WAIT.tilt_step_deg() == 0.0


def test_unknown_action_lists_valid():
    with pytest.raises(ConfigError, match="pour, wait, retract"):
        Action.from_label("spill")


def test_sensor_slots_follow_official_order():
    assert [SensorType.from_name(n) for n in ("gelsight", "digit", "gelslim", "gelsight_mini", "duragel")] == [
        0, 1, 2, 3, 4]
    assert SensorType.from_name("Universal") == 9
    assert SensorType.from_name("gelsight-mini") is SensorType.GELSIGHT_MINI


def test_unknown_sensor_lists_valid():
    with pytest.raises(ConfigError, match="gelsight_mini"):
        SensorType.from_name("biotac")
