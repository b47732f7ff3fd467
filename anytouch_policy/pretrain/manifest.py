"""Aligned touch / vision / text datasets on disk: one JSONL manifest per dataset (docs/pretrain.md has a tree).

One line per tactile sample, paths relative to the manifest's folder:

    {"touch": "touch/obj03/p1/digit/0005.png", "sensor": "digit", "object": "obj03", "position": "p1",
     "vision": "vision/obj03/p1.jpg", "text": "A rough, hard wooden surface ..."}
    {"touch": ["t/0001.png", "t/0002.png", "t/0003.png", "t/0004.png"], "sensor": "gelsight_mini"}

touch     one image (static sample) or 4 consecutive frames (3 encoder inputs + the next frame, oldest first)
sensor    sensor type label (anytouch_policy.sensors: gelsight, digit, gelslim, gelsight_mini, duragel, universal)
object, position   optional ids; samples sharing both from different sensors are cross-sensor positives
vision, text       optional paired modalities (a missing one is left out of exactly the terms that need it)
unit      optional: which sensor took it, where several share a slot (random models in the universal slot)
id        optional free label
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator

from anytouch_policy.errors import ConfigError
from anytouch_policy.pretrain.config import ClipKind
from anytouch_policy.schema import config, decode
from anytouch_policy.sensors import SensorName, SensorType

MANIFEST_FILE = "manifest.jsonl"


def _label(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a string or an integer, got {value!r}")
    text = str(value).strip()
    if not text:
        raise ValueError("is empty; leave it out when there is none")
    return text


#: An id or a text: a string (or an integer id), not empty.
Label = Annotated[str, BeforeValidator(_label)]


def _frames(value: object) -> tuple[str, ...]:
    frames = (value,) if isinstance(value, str) else value
    if not (isinstance(frames, list) and len(frames) in (1, 4) or isinstance(frames, tuple) and len(frames) == 1):
        raise ValueError(f"must be one image path or a list of 4 frame paths (3 inputs + the next frame), "
                         f"got {value!r}")
    return tuple(frames)


@config
class ManifestLine:
    """One line of a manifest as written (module docstring); paths are relative to the manifest's folder."""

    touch: Annotated[tuple[str, ...], BeforeValidator(_frames)]
    sensor: SensorName
    object: Label | None = None
    position: Label | None = None
    vision: str | None = None
    text: Label | None = None
    unit: Label | None = None
    id: Label | None = None


@dataclass(frozen=True)
class TouchRecord:
    """One tactile sample of a manifest and its optional pairings."""

    touch: tuple[Path, ...]  # 1 image or 4 frames
    sensor: SensorType
    object: str | None = None
    position: str | None = None
    vision: Path | None = None
    text: str | None = None
    unit: str | None = None  # the sensor that took it, where several share a slot
    where: str = ""  # "manifest.jsonl:LINE", for messages

    @property
    def kind(self) -> ClipKind:
        return ClipKind.STATIC if len(self.touch) == 1 else ClipKind.VIDEO

    @property
    def match_group(self) -> tuple[str, str, str] | None:
        """(dataset, object, position) when both ids are given: same group + other sensor = positive pair."""
        if self.object is None or self.position is None:
            return None
        return (self.where.rpartition(":")[0], self.object, self.position)


def find_manifests(paths: list[str] | tuple[str, ...]) -> list[Path]:
    """Each path is a manifest file or a folder holding manifest.jsonl."""
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            path = path / MANIFEST_FILE
        if not path.is_file():
            raise ConfigError(f"dataset manifest not found: {path} (give a .jsonl file or a folder with "
                              f"{MANIFEST_FILE})")
        found.append(path)
    return found


def _file(root: Path, rel: str, name: str, where: str, check: bool) -> Path:
    path = root / rel
    if check and not path.is_file():
        raise ConfigError(f"{where}: {name} file not found: {path}")
    return path


def parse_record(obj: object, *, root: Path, where: str, check_files: bool = True) -> TouchRecord:
    """One manifest line (already JSON-decoded) -> TouchRecord; ConfigError names the line and field."""
    line = decode(ManifestLine, obj, where=where)
    return TouchRecord(
        touch=tuple(_file(root, f, "touch", where, check_files) for f in line.touch),
        sensor=line.sensor,
        object=line.object,
        position=line.position,
        vision=None if line.vision is None else _file(root, line.vision, "vision", where, check_files),
        text=line.text,
        unit=line.unit,
        where=where,
    )


def read_manifest(path: Path | str, *, check_files: bool = True) -> list[TouchRecord]:
    """All records of one manifest (blank lines skipped); the first bad line raises ConfigError."""
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where}: not valid JSON ({exc.msg})") from None
            records.append(parse_record(obj, root=path.parent, where=where, check_files=check_files))
    if not records:
        raise ConfigError(f"{path}: manifest holds no samples")
    return records
