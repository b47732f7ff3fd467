"""The controller-side safety settings the xArm backend applies at every bring-up, each return code checked.

None of these persist on the controller without save_conf, and xArm Studio may overwrite them, so they are sent
again on every open() and recover(): TCP offset and payload (when configured), collision sensitivity, the TCP
acceleration cap, and reduced mode with its TCP/joint speed caps and workspace box. Reduced mode is read back:
a boundary that silently did not take effect would be worse than a refused bring-up.
"""

from __future__ import annotations

from typing import Any

from anytouch_policy.errors import DeviceError
from anytouch_policy.hardware.xarm.config import XArmConfig
from anytouch_policy.hardware.xarm.errors import check


def configure_controller_safety(sdk: Any, cfg: XArmConfig) -> None:
    """Apply `cfg`'s safety settings through the connected XArmAPI `sdk` (in mode 0, state 0)."""
    if cfg.tcp_offset is not None:
        check(sdk, "set_tcp_offset()", sdk.set_tcp_offset(list(cfg.tcp_offset), is_radian=False))
    if cfg.tcp_load is not None:
        check(sdk, "set_tcp_load()", sdk.set_tcp_load(cfg.tcp_load[0], list(cfg.tcp_load[1:])))
    # the SDK's set_collision_sensitivity also calls set_state(0) (xArm-Python-SDK#19): the caller changes mode
    # and state afterwards anyway
    check(sdk, "set_collision_sensitivity()", sdk.set_collision_sensitivity(cfg.collision_sensitivity))
    check(sdk, "set_tcp_maxacc()", sdk.set_tcp_maxacc(cfg.tcp_max_acc_mm_s2))
    check(sdk, "set_reduced_max_tcp_speed()", sdk.set_reduced_max_tcp_speed(cfg.reduced_max_tcp_speed_mm_s))
    check(sdk, "set_reduced_max_joint_speed()",
          sdk.set_reduced_max_joint_speed(cfg.reduced_max_joint_speed_deg_s, is_radian=False))
    check(sdk, "set_reduced_tcp_boundary()", sdk.set_reduced_tcp_boundary(list(cfg.workspace_mm)))
    check(sdk, "set_reduced_mode(True)", sdk.set_reduced_mode(True))
    if check(sdk, "get_reduced_mode()", sdk.get_reduced_mode()) != 1:
        raise DeviceError("xArm did not enter reduced mode: the workspace boundary would not be enforced")
