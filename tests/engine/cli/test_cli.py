"""The command line: help, and bad input as one line on stderr with exit code 2."""
import pytest

from engine.cli.main import main
from tests.engine.helpers import make_model_folder, run_cli


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_folder(tmp_path_factory.mktemp("cli") / "tiny-add", "addition")


def test_help_lists_the_commands():
    done = run_cli("--help")
    assert done.returncode == 0
    for command in ("train-probed", "eval-probed", "sites", "models", "query", "train-decoder", "eval-decoder"):
        assert command in done.stdout


def test_bad_input_in_a_real_process_is_one_line_and_exit_2(model_dir):
    done = run_cli("sites", "--model", str(model_dir), "--text", "B6x5+861=1476", "--site", "x0.post")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == ("error: characters not in the vocabulary: 'x'; allowed: 0123456789B+=EP")


@pytest.mark.parametrize("args,message", [
    (["sites", "--model", "nope"], "unknown model 'nope'"),
    (["sites", "--text", "B615+861=1476", "--site", "a1.9"], "unknown site 'a1.9' for this addition model"),
    (["sites", "--text", "B615+861=1476", "--position", "20"], "position 20 is out of range"),
    (["sites", "--text", "B615+861=1476", "--position", "Q"], "'Q' is not a position label"),
    (["sites", "--text", "B615+86=1476"], "not a well-formed addition input"),
    (["sites", "--text", ""], "the addition input is empty"),
    (["sites", "--text", "B615+861=1476" + "1" * 9], "at most 14 are allowed"),
    (["query", "--text", "B615+861=1476", "--site", "x1.post", "--position", "A1", "--sampler", "decoder"],
     "has no decoder"),
    (["query", "--text", "B615+861=1476", "--site", "x1.post", "--position", "A1", "--csv", "/no/such/dir/x.csv"],
     "folder /no/such/dir does not exist"),
    (["query", "--text", "B615+861=1476", "--site", "x1.post", "--position", "A1", "--candidates", "0"],
     "--candidates: expected a number of candidates from 1 to 65,536, got '0'"),
    (["query", "--text", "B615+861=1476", "--site", "x1.post", "--position", "A1", "--schedule", "hot"],
     "bad schedule 'hot'"),
])
def test_bad_input_messages(model_dir, capsys, args, message):
    if "--model" not in args:
        args = [args[0], "--model", str(model_dir), *args[1:]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_sites_table_and_one_activation(model_dir, capsys):
    assert main(["sites", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "a1.3     blocks.1.attn.hook_z[3]" in out
    args = ["sites", "--model", str(model_dir), "--text", "B615+861=1476", "--site", "m1", "--position", "A2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "m1 (blocks.1.hook_mlp_out) at position 10 ('A2'): d=32" in out
