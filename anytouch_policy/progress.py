"""Progress bars: shown when asked for and stderr is a terminal.

tqdm redraws its bar with carriage returns; written to a log file (`make demo > demo.log`, CI) every redraw stays,
and an epoch's bar alone adds kilobytes of fragments. `disable=None` is tqdm's own "off unless a terminal".
"""


def bar_disabled(wanted: bool) -> bool | None:
    """tqdm's `disable` for a bar: True when not wanted (`--no-progress`), else None (tqdm hides it off a tty)."""
    return None if wanted else True
