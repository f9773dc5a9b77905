"""The command line's progress bars: rich draws them in a terminal; elsewhere (a log, a pipe) each
bar is a plain line at its first update and then every few seconds, with no escape codes."""
import io

import pytest

from engine.cli import progress
from engine.cli.progress import ProgressBar, format_seconds, is_terminal, log_line


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Log(io.StringIO):
    def isatty(self):
        return False


def test_the_stream_chooses_rich_or_log_lines():
    assert is_terminal(Terminal()) and not is_terminal(Log()) and not is_terminal(object())
    assert ProgressBar("x", stream=Terminal()).tty and not ProgressBar("x", stream=Log()).tty
    closed = Log()
    closed.close()
    assert not is_terminal(closed)  # a closed stream: log lines (which nobody reads), not a crash


def test_a_log_gets_a_plain_line_at_first_and_then_every_few_seconds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    out = Log()
    bar = ProgressBar("train counting", stream=out, log_every_s=10)
    bar.update(1, 10, 2.0, "loss 0.5000")
    clock[0] += 3
    bar.update(2, 10, 5.0, "loss 0.4000")  # within 10 s of the last line: not written
    bar.update(3, 10, 6.0, "check", force=True)  # forced: written
    clock[0] += 11
    bar.update(9, 10, 18.0, "loss 0.1000 [not markup]")
    bar.note("check at 0.3 min: average in-epsilon 0.50")
    bar.update(10, 10, 20.0)  # right after a note: shown again
    bar.close()
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "train counting [###                           ] 1/10  10.0% elapsed 00:02 ETA 00:18 loss 0.5000",
        "train counting [#########                     ] 3/10  30.0% elapsed 00:06 ETA 00:14 check",
        "train counting [###########################   ] 9/10  90.0% elapsed 00:18 ETA 00:02 loss 0.1000 [not markup]",
        "check at 0.3 min: average in-epsilon 0.50",
        "train counting [##############################] 10/10 100.0% elapsed 00:20 ETA 00:00",
    ]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_a_terminal_gets_rich_bars_that_share_one_display():
    """Two bars at once (training and its check) are two rows of one rich display: rich allows one
    live display at a time. The text after the ETA is not read as rich markup."""
    out = Terminal()
    bar = ProgressBar("train counting", stream=out)
    check = ProgressBar("  check", stream=out)
    bar.update(3, 10, 6.0, "loss [bold]0.5[/bold]", force=True)
    check.update(1, 4, 2.0, "sites of 4", force=True)
    bar.note("check at 0.1 min")
    assert bar._display is check._display and bar._display.started
    bar.close()  # the check bar, made after it, closes with it
    assert check.closed and out not in progress._DISPLAYS
    check.update(2, 4, 3.0)  # ignored once closed
    text = out.getvalue()
    assert "\x1b[" in text  # drawn by rich, with escape codes
    assert "train counting" in text and "3/10" in text and "  check" in text and "1/4" in text
    assert "loss [bold]0.5[/bold]" in text and "check at 0.1 min" in text
    assert "elapsed 00:06 ETA 00:14" in text and "ETA 00:06" in text


def test_stdout_to_a_file_is_not_drawn_into_the_bars(monkeypatch, capsys):
    """A bar on the terminal's stderr redirects stdout above it only when stdout is that terminal:
    `sweep ... > rows.txt` keeps its rows in the file."""
    import sys

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = ProgressBar("map")
    bar.update(1, 2, 1.0, force=True)
    print("a row")
    bar.close()
    assert "a row" in capsys.readouterr().out and "a row" not in term.getvalue()


@pytest.mark.parametrize("seconds, text", [(0, "00:00"), (-5, "00:00"), (75.9, "01:15"), (3725, "1:02:05")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_a_log_line_reads_without_a_total():
    assert log_line("map", 0, 0, 0.0) == "map [                              ] 0/0   0.0% elapsed 00:00 ETA 00:00"
