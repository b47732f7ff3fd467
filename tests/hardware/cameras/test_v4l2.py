"""Finding a camera by stable path, serial or explicit index, and telling capture nodes from metadata nodes."""

import struct
from pathlib import Path

import pytest

from anytouch_policy.errors import ConfigError, DeviceError
from anytouch_policy.hardware.cameras.v4l2 import (
    V4L2_CAP_DEVICE_CAPS,
    V4L2_CAP_META_CAPTURE,
    V4L2_CAP_VIDEO_CAPTURE,
    SourceKind,
    check_capture_node,
    parse_capability,
    resolve_device,
    source_kind,
)


def _by_id(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "by-id"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(tmp_path / "video0")
    return folder


def test_serial_resolves_to_the_capture_link(tmp_path):
    folder = _by_id(tmp_path, "usb-GelSight_Inc._GelSight_Mini_R0B_2BG8FH59_2BG8FH59-video-index0",
                    "usb-GelSight_Inc._GelSight_Mini_R0B_2BG8FH59_2BG8FH59-video-index1",
                    "usb-GelSight_Inc._GelSight_Mini_R0B_28J3CQ6K_28J3CQ6K-video-index0")
    path = resolve_device(device="", serial="2bg8-fh59", index=None, by_id_dir=str(folder), name_hint="GelSight")
    assert path.endswith("2BG8FH59-video-index0")


def test_unknown_serial_lists_what_is_there(tmp_path):
    folder = _by_id(tmp_path, "usb-GelSight_Inc._GelSight_Mini_R0B_28J3CQ6K_28J3CQ6K-video-index0")
    with pytest.raises(DeviceError, match="28J3CQ6K-video-index0"):
        resolve_device(device="", serial="2BG8-FH59", index=None, by_id_dir=str(folder))


def test_exactly_one_selector_and_index_only_on_request(tmp_path):
    with pytest.raises(ConfigError, match="exactly one"):
        resolve_device(device="", serial="", index=None, by_id_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="exactly one"):
        resolve_device(device="/dev/video0", serial="X", index=None, by_id_dir=str(tmp_path))
    assert resolve_device(device="", serial="", index=2, by_id_dir=str(tmp_path)) == "/dev/video2"


def _capability(caps: int, device_caps: int) -> bytes:
    return struct.pack("<16s32s32sIII12x", b"uvcvideo", b"GelSight Mini R0B 2BG8-FH59", b"usb-0000:00:14.0-2",
                       0x60000, caps, device_caps)


def test_parse_capability_tells_capture_from_metadata():
    capture = parse_capability(_capability(V4L2_CAP_DEVICE_CAPS | V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_META_CAPTURE,
                                           V4L2_CAP_VIDEO_CAPTURE))
    meta = parse_capability(_capability(V4L2_CAP_DEVICE_CAPS | V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_META_CAPTURE,
                                        V4L2_CAP_META_CAPTURE))
    assert capture.card == "GelSight Mini R0B 2BG8-FH59" and capture.driver == "uvcvideo"
    assert capture.is_capture and not meta.is_capture


def test_a_regular_file_is_not_a_v4l2_node(tmp_path):
    fake = tmp_path / "video0"
    fake.write_bytes(b"not a device")
    with pytest.raises(DeviceError, match="not a V4L2 device"):
        check_capture_node(str(fake))


def test_files_are_sources_only_when_allowed(tmp_path):
    video = tmp_path / "clip.avi"
    video.write_bytes(b"x")
    assert source_kind(str(video), allow_file=True) is SourceKind.FILE
    with pytest.raises(ConfigError, match="allow_file"):
        source_kind(str(video), allow_file=False)
    with pytest.raises(DeviceError, match="does not exist"):
        source_kind(str(tmp_path / "missing"), allow_file=True)
    assert source_kind("/dev/null", allow_file=False) is SourceKind.V4L2  # a character device
    with pytest.raises(DeviceError, match="not a V4L2 device"):
        check_capture_node("/dev/null")
