"""Progress bars show on a terminal and stay out of log files (anytouch_policy.progress)."""

import io
import os

from tqdm import tqdm

from anytouch_policy.progress import bar_disabled


def _draw(file, wanted: bool) -> None:
    for _ in tqdm(range(3), desc="shown" if wanted else "hidden", file=file, disable=bar_disabled(wanted),
                  mininterval=0):
        pass


def test_a_bar_draws_on_a_terminal_only_when_wanted():
    master, slave = os.openpty()
    try:
        with os.fdopen(os.dup(slave), "w") as tty:
            _draw(tty, wanted=True)
            _draw(tty, wanted=False)
        drawn = os.read(master, 65536).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert "shown: 100%" in drawn and "3/3" in drawn and "hidden" not in drawn


def test_a_log_file_gets_no_bar_fragments():
    log = io.StringIO()
    _draw(log, wanted=True)
    _draw(log, wanted=False)
    assert log.getvalue() == ""
