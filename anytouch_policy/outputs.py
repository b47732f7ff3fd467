"""Output folders: the one rule every command that writes a folder follows (train, demo, pretrain, convert-checkpoint,
sim render), so no flag can ever delete something that is not that command's own earlier output.

    check_output_dir(out, kind, overwrite=...)   at start, before any work:
        missing or empty folder                  accepted
        a <kind> (its markers, nothing else)     accepted with overwrite, else refused ("pass --overwrite")
        anything else (a file, bags, notes...)   refused, naming the path and what is in the way; never replaced
    with writing_dir(out, kind, overwrite=...) as staged:
        ... write into staged ...                the new folder is written next to `out` (.<name>.XXXX/), then
                                                 swapped in: the old one is renamed away, the new one renamed into
                                                 place, the old one deleted. A crash never leaves half a folder,
                                                 except with keep_on_error (recordings: what finished is kept).
    reset_output_dir(out, kind, ...)             for commands that write in place as they go (pretrain checkpoints)

An `OutputKind` recognises its folders by marker files (all present) and a list of the entries such a folder may
hold; a bundle also by the `kind` field of its config.json. Errors are ConfigErrors naming the path.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from anytouch_policy.errors import ConfigError


@dataclass(frozen=True)
class OutputKind:
    """What a command writes into its output folder, and how a folder of that kind is recognised."""

    name: str  # "policy bundle", in messages
    markers: tuple[str, ...]  # relative paths that must all exist
    contents: tuple[str, ...]  # glob patterns of every top-level entry such a folder may hold
    config_kind: str | None = None  # the `kind` field its config.json must hold (bundles)
    hint: str = "pass --overwrite to replace it"  # what to do when such a folder is in the way

    @property
    def a_name(self) -> str:
        """The name with its article, for messages ("an encoder bundle")."""
        return f"{'an' if self.name[0] in 'aeiouAEIOU' else 'a'} {self.name}"

    def mismatch(self, path: Path) -> str | None:
        """Why the existing folder `path` is not of this kind, or None when it is."""
        entries = sorted(p.name for p in path.iterdir())
        missing = [m for m in self.markers if not (path / m).exists()]
        if missing:
            return f"no {', '.join(missing)}; it holds {_listing(entries)}"
        if self.config_kind is not None:
            try:
                found = json.loads((path / "config.json").read_text()).get("kind")
            except (OSError, ValueError, AttributeError):
                found = None
            if found != self.config_kind:
                return f"config.json kind is {found!r}, not {self.config_kind!r}"
        foreign = [e for e in entries if not any(fnmatch.fnmatchcase(e, pattern) for pattern in self.contents)]
        if foreign:
            return f"it also holds {_listing(foreign)}"
        return None


def _listing(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _writable_parent(path: Path) -> None:
    """The nearest existing ancestor of `path` must be a folder we may write into (so the folder can be made)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot create {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot create {path}: {parent} is not writable")


def check_output_dir(path: Path | str, kind: OutputKind | None, *, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output folder the command may not write (see the module docstring).

    `kind` None: the command never replaces anything (only a missing or empty folder is accepted).
    """
    path = Path(path)
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link; give the folder it points to")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file; the output must be a folder")
    if not path.exists():
        _writable_parent(path)
        return path
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{path} is not writable")
    if not any(path.iterdir()):
        return path
    if kind is None:
        raise ConfigError(f"{path} exists and is not empty; choose a new folder")
    why = kind.mismatch(path)
    if why is not None:
        raise ConfigError(f"refusing to write into {path}: it is not {kind.a_name} ({why}); only an empty folder "
                          f"or {kind.a_name} is ever replaced, choose another folder")
    if not overwrite:
        raise ConfigError(f"{path} already holds {kind.a_name}; {kind.hint}")
    return path


def make_dir(path: Path | str) -> Path:
    """mkdir -p, with the operating system's refusal (read-only, /proc, a file in the way) as a ConfigError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


def staging_dir(path: Path | str) -> Path:
    """A fresh hidden folder next to `path` (same file system, so publish_dir can rename it into place)."""
    path = Path(path)
    make_dir(path.parent)
    try:
        staged = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: cannot write into {path.parent} ({exc.strerror or exc})") from None
    staged.chmod(0o755)
    return staged


def publish_dir(staged: Path, path: Path | str, kind: OutputKind, *, overwrite: bool) -> Path:
    """Swap the finished folder `staged` in at `path` (checked again: it may have changed since the start).

    When `path` may not be replaced after all, `staged` is kept and the error says where the new folder is.
    """
    path = Path(path)
    try:
        check_output_dir(path, kind, overwrite=overwrite)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; the new {kind.name} is kept in {staged}") from None
    old = None
    if path.exists():
        old = staging_dir(path)  # an empty folder a directory may be renamed onto
        os.replace(path, old)
    try:
        os.replace(staged, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


@contextmanager
def writing_dir(path: Path | str, kind: OutputKind, *, overwrite: bool, keep_on_error: bool = False) -> Iterator[Path]:
    """Check `path`, yield a staging folder to fill, and swap it in when the block succeeds; otherwise drop it.

    With `keep_on_error` (a recording: each finished episode is worth keeping) a failed or interrupted block that left
    something in the staging folder keeps it: at `path` when nothing was there before, else in the staging folder
    (an earlier output is never replaced by a partial one). The exception gets a note saying where.
    """
    path = check_output_dir(path, kind, overwrite=overwrite)
    staged = staging_dir(path)
    try:
        yield staged
    except BaseException as exc:
        if keep_on_error and any(staged.iterdir()):
            kept = staged
            if not path.exists() or (path.is_dir() and not any(path.iterdir())):
                os.replace(staged, path)
                kept = path
            exc.add_note(f"what was finished is kept in {kept}")
        else:
            shutil.rmtree(staged, ignore_errors=True)
        raise
    publish_dir(staged, path, kind, overwrite=overwrite)


def reset_output_dir(path: Path | str, kind: OutputKind, *, overwrite: bool) -> Path:
    """Check `path` and make it an empty folder, deleting an earlier `kind` there (overwrite): for commands that
    write into their output as they go, where a swap at the end is not possible."""
    path = check_output_dir(path, kind, overwrite=overwrite)
    if path.exists() and any(path.iterdir()):
        old = staging_dir(path)
        os.replace(path, old)
        shutil.rmtree(old, ignore_errors=True)
    return make_dir(path)


#: What a plot path may end in (formats matplotlib's Agg canvas writes).
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")


def check_output_file(path: Path | str, *, what: str = "output file", suffixes: tuple[str, ...] = ()) -> Path:
    """A file about to be written (a plot): not a folder, its folder exists or can be made and is writable, and
    (with `suffixes`) its name ends in one of them."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{what} {path}: the file name must end in one of {', '.join(suffixes)}")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {path} is not writable")
    try:
        _writable_parent(path)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    return path
