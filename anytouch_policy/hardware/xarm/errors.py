"""Names for xArm SDK return codes and controller error/warning codes, and the return-code check.

Every SDK call returns a code (0 = OK). `check` turns any other code into a DeviceError naming the call, the
code's APIState name and the controller's current error/warning with its title from the SDK's own tables, so an
operator reads "set_mode(7) failed: code 1 (HAS_ERROR); controller error C31 (Collision Caused Abnormal
Current)" instead of a bare number. The SDK is imported inside the functions (vendor SDKs stay in their backend).
"""

from __future__ import annotations

from typing import Any

from anytouch_policy.errors import DeviceError

#: Controller error codes of the emergency-stop circuits: button on the box, emergency IO, three-state switch.
ESTOP_ERROR_CODES = frozenset({1, 2, 3})


def api_code_name(code: int) -> str:
    """The SDK's APIState name of a return code ("STATE_NOT_READY", ...), "UNKNOWN" otherwise."""
    from xarm.x3.code import APIState

    names = {value: key for key, value in vars(APIState).items() if key.isupper() and isinstance(value, int)}
    return names.get(code, "UNKNOWN")


def describe_controller(error_code: int, warn_code: int) -> str:
    """'controller error C31 (Collision ...), warning W14 (...)' or 'no controller error or warning'."""
    from xarm.core.config.x_code import ControllerError, ControllerWarn

    parts = []
    if error_code:
        parts.append(f"controller error C{error_code} ({ControllerError(error_code).title['en']})")
    if warn_code:
        parts.append(f"warning W{warn_code} ({ControllerWarn(warn_code).title['en']})")
    return ", ".join(parts) or "no controller error or warning"


def check(sdk: Any, call: str, result: Any, *, ok: tuple[int, ...] = (0,)) -> Any:
    """Raise DeviceError unless the SDK call's code is in `ok`; returns the call's data ((code, data) results)."""
    code, data = (result[0], result[1] if len(result) > 1 else None) if isinstance(result, tuple | list) \
        else (result, None)
    if code not in ok:
        state = describe_controller(getattr(sdk, "error_code", 0), getattr(sdk, "warn_code", 0))
        raise DeviceError(f"xArm {call} failed: code {code} ({api_code_name(code)}); {state}")
    return data
