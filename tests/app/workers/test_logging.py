"""The log file: unexpected engine errors leave their traceback there, where a GUI user started
from a launcher (no terminal) can find it."""
import logging

from engine.logs import log_path, setup_logging


def test_an_unexpected_error_leaves_its_traceback_in_the_log_file(tmp_path, monkeypatch):
    monkeypatch.setenv("INVERSIONVIEW_LOG_DIR", str(tmp_path / "logs"))
    from engine.server.service import describe_error

    path = setup_logging()
    assert path == tmp_path / "logs" / "studio.log" == log_path()
    assert setup_logging() == path  # a second call adds no second handler
    try:
        raise RuntimeError("the decoder fell over")
    except RuntimeError as e:
        line = describe_error(e)
    assert line == "RuntimeError: the decoder fell over"
    for handler in logging.getLogger("engine").handlers:
        handler.flush()
    text = path.read_text()
    assert text.count("unexpected error in the engine") == 1
    assert "Traceback (most recent call last)" in text and "RuntimeError: the decoder fell over" in text


def test_an_unwritable_log_folder_does_not_stop_anything(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("INVERSIONVIEW_LOG_DIR", str(blocker / "logs"))
    assert setup_logging() is None
