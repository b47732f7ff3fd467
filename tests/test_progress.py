"""Progress bars show on a terminal and stay out of log files (anytouch_policy.progress)."""

import io
import os
import select

from tqdm import tqdm

from anytouch_policy.progress import bar_disabled


def _draw(file, wanted: bool) -> None:
    for _ in tqdm(range(3), desc="shown" if wanted else "hidden", file=file, disable=bar_disabled(wanted),
                  mininterval=0):
        pass


def _read_all(fd: int) -> str:
    """Everything written to a pty so far: one read returns what the line discipline has passed on, which on a
    loaded machine can be the first of the bar's writes only."""
    chunks = []
    while select.select([fd], [], [], 1.0)[0]:
        chunks.append(os.read(fd, 65536))
    return b"".join(chunks).decode()


def test_a_bar_draws_on_a_terminal_only_when_wanted():
    master, slave = os.openpty()
    try:
        with os.fdopen(os.dup(slave), "w") as tty:
            _draw(tty, wanted=True)
            _draw(tty, wanted=False)
        drawn = _read_all(master)
    finally:
        os.close(master)
        os.close(slave)
    assert "shown: 100%" in drawn and "3/3" in drawn and "hidden" not in drawn


def test_a_log_file_gets_no_bar_fragments():
    log = io.StringIO()
    _draw(log, wanted=True)
    _draw(log, wanted=False)
    assert log.getvalue() == ""
