"""Tactile sensor types, their AnyTouch sensor-token slots and native image formats."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

from anytouch_policy.errors import ConfigError


class SensorType(IntEnum):
    """Sensor-token slot of each sensor family, in the order of the official AnyTouch dataloaders.

    Slots 5-8 were never trained; slot 9 (index -1 in the official code) is the universal token used for unseen
    sensors and for the "universal" token mode.
    """

    GELSIGHT = 0
    DIGIT = 1
    GELSLIM = 2
    GELSIGHT_MINI = 3
    DURAGEL = 4
    UNIVERSAL = 9

    @property
    def label(self) -> str:
        """Lower-case name used on the command line, in parameters and in bags."""
        return self.name.lower()

    @classmethod
    def from_name(cls, name: str) -> SensorType:
        """Parse a sensor name ("gelsight_mini", "DIGIT", "universal"...); the error lists the valid names."""
        key = name.strip().upper().replace("-", "_")
        try:
            return cls[key]
        except KeyError:
            valid = ", ".join(s.label for s in cls)
            raise ConfigError(f"unknown sensor name {name!r}; valid names: {valid}") from None


def _by_name(value: object) -> SensorType:
    if isinstance(value, SensorType):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a sensor type name ({', '.join(s.label for s in SensorType)}), got {value!r}")
    return SensorType.from_name(value)  # its ConfigError (a ValueError) lists the valid names


#: A SensorType in a config file: written and read by its name ("gelsight_mini"), never by its slot number.
SensorName = Annotated[SensorType, BeforeValidator(_by_name), PlainSerializer(lambda s: s.label, return_type=str)]


@dataclass(frozen=True)
class SensorFormat:
    """Native frame layout a driver publishes: RGB uint8, height x width, nominal rate."""

    height: int
    width: int
    fps: float


#: Frame formats published by our drivers for the sensors we support on the rig. The simulator's formats come from
#: its sensor model files (sim/sensor_models/*.yaml), whose gelsight_mini and digit agree with these (tested).
#: GelSight Mini: 320x240 landscape after the 0.15 border crop, 25 fps nominal (15-19 fps measured on Linux).
#: DIGIT: QVGA at 60 fps, returned portrait (320 high x 240 wide) by digit-interface's default transpose.
NATIVE_FORMATS: dict[SensorType, SensorFormat] = {
    SensorType.GELSIGHT_MINI: SensorFormat(height=240, width=320, fps=25.0),
    SensorType.DIGIT: SensorFormat(height=320, width=240, fps=60.0),
}
