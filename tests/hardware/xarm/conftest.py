"""Fixtures for the xArm and Robotiq backends: a stand-in xArm controller on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.hardware.xarm.fake_xarm_controller import FakeXArmController


@pytest.fixture
def make_controller(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeXArmController]]:
    """Start FakeXArmController(**kwargs); stopped at teardown.

    The SDK dials the fixed ports 502 and 30002. The stand-in binds both on its own 127.x.y.z address; where
    port 502 cannot be bound (not root) it takes a free port and XCONF.SocketConf.TCP_CONTROL_PORT, the SDK's
    own constant, is pointed at it for this test. Nothing else in the SDK is touched.
    """
    started: list[FakeXArmController] = []

    def start(**kwargs: object) -> FakeXArmController:
        controller = FakeXArmController(**kwargs).__enter__()
        started.append(controller)
        if controller.port != 502:
            from xarm.core.config.x_config import XCONF

            monkeypatch.setattr(XCONF.SocketConf, "TCP_CONTROL_PORT", controller.port)
        return controller

    yield start
    for controller in started:
        controller.stop()
