"""Finding the right V4L2 node of a USB camera, and proving it is the capture node.

Every UVC camera creates two /dev/video nodes: a capture node and a metadata node. Matching by name or taking
an index finds either (gsrobotics#8, #26), and the index changes between boots. So a camera is named by its
stable udev path /dev/v4l/by-id/...-video-index0, or by serial (resolved to that path); a bare /dev/videoN index
is taken only when asked for explicitly. Whatever path is chosen, VIDIOC_QUERYCAP must report the
V4L2_CAP_VIDEO_CAPTURE capability before the camera is opened (the metadata node reports META_CAPTURE instead).
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from anytouch_policy.errors import ConfigError, DeviceError

#: _IOR('V', 0, struct v4l2_capability): the struct is 104 bytes.
VIDIOC_QUERYCAP = 0x80685600
V4L2_CAP_VIDEO_CAPTURE = 0x00000001
V4L2_CAP_META_CAPTURE = 0x00800000
V4L2_CAP_DEVICE_CAPS = 0x80000000
_CAPABILITY = struct.Struct("<16s32s32sIII12x")


class SourceKind(StrEnum):
    """What a configured camera path turned out to be."""

    V4L2 = "v4l2"  # a character device: checked with VIDIOC_QUERYCAP
    FILE = "file"  # a video file, replayed (tests and offline replay; must be allowed explicitly)


@dataclass(frozen=True)
class V4L2Capability:
    """The fields of struct v4l2_capability that identify a node."""

    driver: str
    card: str
    bus_info: str
    capabilities: int
    device_caps: int

    @property
    def node_caps(self) -> int:
        """Capabilities of this node (device_caps when the driver fills it, as every modern driver does)."""
        return self.device_caps if self.capabilities & V4L2_CAP_DEVICE_CAPS else self.capabilities

    @property
    def is_capture(self) -> bool:
        return bool(self.node_caps & V4L2_CAP_VIDEO_CAPTURE)


def parse_capability(buffer: bytes) -> V4L2Capability:
    """Decode the 104 bytes VIDIOC_QUERYCAP fills in."""
    driver, card, bus, _version, caps, device_caps = _CAPABILITY.unpack(buffer[: _CAPABILITY.size])

    def text(raw: bytes) -> str:
        return raw.split(b"\0", 1)[0].decode(errors="replace")

    return V4L2Capability(text(driver), text(card), text(bus), caps, device_caps)


def query_capability(path: str) -> V4L2Capability:
    """VIDIOC_QUERYCAP on a device node; DeviceError naming the path when it is not a V4L2 node."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise DeviceError(f"cannot open camera node {path}: {exc.strerror}") from None
    try:
        buffer = bytearray(_CAPABILITY.size)
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, buffer)
    except OSError as exc:
        raise DeviceError(f"{path} is not a V4L2 device (VIDIOC_QUERYCAP failed: {exc.strerror})") from None
    finally:
        os.close(fd)
    return parse_capability(bytes(buffer))


def sysfs_index(path: str) -> int | None:
    """The udev 'index' of a /dev/videoN node (0 = capture, 1 = metadata on UVC cameras), when sysfs has it."""
    index_file = Path("/sys/class/video4linux") / Path(os.path.realpath(path)).name / "index"
    try:
        return int(index_file.read_text().strip())
    except (OSError, ValueError):
        return None


def check_capture_node(path: str) -> V4L2Capability:
    """Raise DeviceError unless `path` is a video capture node; returns its capability for /diagnostics."""
    cap = query_capability(path)
    if not cap.is_capture:
        kind = "a metadata node" if cap.node_caps & V4L2_CAP_META_CAPTURE else "not a capture node"
        raise DeviceError(
            f"{path} ({os.path.realpath(path)}, udev index {sysfs_index(path)}, card {cap.card!r}) is {kind}: "
            "use the /dev/v4l/by-id/...-video-index0 path of the camera"
        )
    return cap


def source_kind(path: str, *, allow_file: bool) -> SourceKind:
    """Classify a configured path: a character device, or a video file when files are allowed."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise DeviceError(f"camera path {path} does not exist ({exc.strerror}); list cameras with "
                          "`ls -l /dev/v4l/by-id/`") from None
    if stat.S_ISCHR(mode):
        return SourceKind.V4L2
    if stat.S_ISREG(mode):
        if not allow_file:
            raise ConfigError(f"camera path {path} is a regular file; set allow_file=true to replay a video file")
        return SourceKind.FILE
    raise DeviceError(f"camera path {path} is neither a device node nor a file")


def _normalised(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def resolve_device(*, device: str, serial: str, index: int | None, by_id_dir: str, name_hint: str = "") -> str:
    """The camera path from exactly one of: an explicit path, a serial, or an explicit /dev/videoN index.

    A serial is matched (ignoring case and punctuation, so "2BG8-FH59" matches "..._2BG8FH59-video-index0") against
    the `*-video-index0` links in `by_id_dir`; `name_hint` (e.g. "GelSight") only breaks a tie between several.
    """
    given = [n for n, v in (("device", device), ("serial", serial), ("index", index)) if v not in ("", None)]
    if len(given) != 1:
        raise ConfigError(f"set exactly one of device, serial or index (got {given or 'none'}); prefer device="
                          f"{by_id_dir}/...-video-index0 or the serial printed on the sensor")
    if device:
        return device
    if index is not None:
        if index < 0:
            raise ConfigError(f"index must be >= 0, got {index}")
        return f"/dev/video{index}"
    links = sorted(Path(by_id_dir).glob("*-video-index0")) if Path(by_id_dir).is_dir() else []
    key, hint = _normalised(serial), _normalised(name_hint)
    matches = [p for p in links if key in _normalised(p.name)]
    if len(matches) > 1 and hint:
        matches = [p for p in matches if hint in _normalised(p.name)] or matches
    if len(matches) != 1:
        found = ", ".join(p.name for p in links) or "none"
        what = "no camera" if not matches else f"{len(matches)} cameras"
        raise DeviceError(f"{what} with serial {serial!r} under {by_id_dir} (capture links found: {found})")
    return str(matches[0])
