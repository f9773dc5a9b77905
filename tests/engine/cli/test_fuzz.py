"""Fuzzing the command line: every value flag of every subcommand, fed the values people and
scripts get wrong, ends in exit code 2 with one line `error: ...` on stderr: no traceback, no
work done for minutes, nothing written.

The cases come from the parsers themselves (each action's type, choices and option strings),
so a new flag is fuzzed without editing this file; a new subcommand needs a line in BASE, the
valid arguments the fuzzed flag is added to (checked by test_every_subcommand_has_a_base)."""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import signal
import threading
from pathlib import Path

import pytest

from engine.cli import values
from engine.cli.main import build_parser, main
from tests.engine.helpers import ROOT, run_cli

QUERY = "Baiaigiaaggi|g:3"
TMP = "{tmp}"  # replaced by the test's temporary folder
PAPER_FILE = f"{TMP}/viewer.json"  # a valid web-viewer file, written by the fixture

# Each subcommand with valid arguments that keep its work short and its writes in TMP: with
# nothing fuzzed it would run, briefly; with one flag fuzzed, only that flag is wrong.
BASE: dict[str, list[str]] = {
    "models": [],
    "sites": ["--model", "counting", "--text", QUERY, "--site", "x1.post", "--position", ":"],
    "train-probed": ["counting", "--steps", "1", "--batch-size", "8", "--out", f"{TMP}/out/probed"],
    "eval-probed": ["counting", "--limit", "1"],
    "train-decoder": ["counting", "--model", "counting", "--into", "fuzz-decoder", "--steps", "1", "--batch-size",
                      "8", "--check-every", "0", "--d-model", "8", "--layers", "1", "--heads", "1"],
    "eval-decoder": ["counting", "--queries", "1"],
    "query": ["--model", "counting", "--text", QUERY, "--site", "x1.post", "--position", ":", "--candidates", "8"],
    "show-json": [PAPER_FILE],
    "flow": ["--model", "counting", "--text", QUERY],
    "patch": ["--model", "counting", "--text", QUERY, "--corrupt", "Baiaiaiaaggi|g:2"],
    "sweep": ["--model", "counting", "--text", QUERY, "--sites", "x1.post", "--positions", ":", "--candidates", "8"],
    "ioi-circuit": ["--model", "ioi", "--count", "1", "--patched", "1", "--queries", "1", "--candidates", "8",
                    "--no-inversion"],
}

LONG_NAME = "n" * 256  # over the 255 bytes a file name may have
LONG_UTF8 = "é" * 128  # 128 characters, 256 bytes
NUMBERS = ["-1", "0", "nan", "inf", "-inf", "1e309", "9" * 5000, "²", "٣", ""]  # ٣: an Arabic-Indic 3
NAMES = ["", LONG_NAME, LONG_UTF8, f"{TMP}/missing/folder/name"]
NUL_PATH = f"{TMP}/nul\0name"  # no file system takes a NUL: os calls raise ValueError, not OSError
ODD_NAME = f"{TMP}/missing\nline\x1b[2J.json"  # a newline and a terminal escape: shown escaped, one line
OUTPUT_FILES = ["", f"{TMP}/{LONG_NAME}", f"{TMP}/missing/folder/out.json", f"{TMP}/a-file/out.json", "/dev/full",
                TMP, NUL_PATH]
# (a model folder in a missing folder is fine: the model writers make the folders above it)
OUTPUT_FOLDERS = ["", f"{TMP}/{LONG_NAME}", f"{TMP}/a-file/model", "/dev/full", f"{TMP}/a-file", NUL_PATH]
INPUT_FILES = ["", f"{TMP}/{LONG_NAME}", f"{TMP}/missing/folder/in.json", TMP, "/dev/full", NUL_PATH, ODD_NAME]
POSITIONS = ["²", "-1", "99999", ""]
SITES = ["a99.0", "", ","]
CHOICES = ["", "bogus", "²"]
DEVICES = ["", "gpu", "cuda:99", "cuda:²", "cuda:-1"]

INPUT_PATHS = {"file", "corpus"}  # path flags read, not written
FOLDER_OUTPUTS = {"out"}  # path flags naming a folder to write
FOLDER_OK = {"paper_json"}  # output files that may be given as a folder (the writer names the file)
MAKES_FOLDERS = {("flow", "json"), ("flow", "neuronpedia")}  # writers that make missing folders (test_flow.py)
POSITION_FLAGS = {"position", "positions"}
SITE_FLAGS = {"site", "sites"}


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def is_number_type(kind) -> bool:
    """The number types of engine.cli.values: in_range's and positive_minutes."""
    return kind is values.positive_minutes or getattr(kind, "__qualname__", "").startswith("in_range.")


def value_class(action: argparse.Action, command: str = "") -> tuple[str, list[str]]:
    """The kind of value an action takes, from the parser, and the bad values for that kind."""
    kind = action.type
    if kind in (Path, values.path) or action.metavar in ("PATH", "FILE"):
        if action.dest in INPUT_PATHS:
            return "input", INPUT_FILES
        if action.dest in FOLDER_OUTPUTS:
            return "folder", OUTPUT_FOLDERS
        fine = {TMP} if action.dest in FOLDER_OK else set()
        fine |= {v for v in OUTPUT_FILES if "/missing/" in v} if (command, action.dest) in MAKES_FOLDERS else set()
        return "output", [v for v in OUTPUT_FILES if v not in fine]
    if kind is values.site_list or action.dest in SITE_FLAGS:
        return "site", SITES
    if action.dest in POSITION_FLAGS:
        return "position", POSITIONS
    if kind is values.device:
        return "device", DEVICES
    if action.choices:
        return "choice", CHOICES
    if is_number_type(kind):
        bad = []
        for v in NUMBERS:
            try:
                kind(v)
            except argparse.ArgumentTypeError:
                bad.append(v)
                continue
            if v not in ("0", "-1"):  # 0 where allowed is fine; nothing else here is a number
                bad.append(v)
        return "number", bad
    return "name", NAMES  # names, texts and anything else: empty, too long, in a missing folder


def value_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions that take a value (not --help, not the on/off switches)."""
    return [a for a in parser._actions if a.nargs != 0 and not isinstance(a, argparse._HelpAction)]


def flag_of(action: argparse.Action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def split_base(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The positionals and the options (option string -> its values, [] for a switch) of argv."""
    takes = {s: a.nargs != 0 for a in parser._actions for s in a.option_strings}
    positionals, options, i = [], {}, 0
    while i < len(argv):
        if argv[i] in takes:
            options[argv[i]] = [argv[i + 1]] if takes[argv[i]] else []
            i += 2 if takes[argv[i]] else 1
        else:
            positionals.append(argv[i])
            i += 1
    return positionals, options


def fuzzed_argv(command: str, parser: argparse.ArgumentParser, action: argparse.Action, value: str) -> list[str]:
    """BASE[command] with `action` given `value` (and with any flag it excludes left out)."""
    positionals, options = split_base(parser, BASE[command])
    if action.option_strings:
        for s in action.option_strings:
            options.pop(s, None)
        for group in parser._mutually_exclusive_groups:
            if action in group._group_actions:
                for other in group._group_actions:
                    for s in other.option_strings:
                        options.pop(s, None)
        args = [f"{action.option_strings[-1]}={value}"]  # '=': a value starting with '-' is still the value
    else:
        index = [a for a in parser._actions if not a.option_strings].index(action)
        if value.startswith("-"):  # a positional that looks like a flag: after '--'
            positionals = positionals[:index] + positionals[index + 1:]
            args = ["--", value]
        else:
            positionals = positionals[:index] + [value] + positionals[index + 1:]
            args = []
    opts = [x for flag, vals in options.items() for x in (flag, *vals)]
    return [command, *positionals, *opts, *args]


def all_cases() -> list[tuple[str, str, str, list[str]]]:
    """(case id, flag, kind, argv with TMP placeholders), every flag of every subcommand."""
    cases = []
    for command, parser in subparsers().items():
        cases.append((f"{command}:unknown-flag", f"{command} --no-such-flag", "unknown",
                      [command, *BASE.get(command, []), "--no-such-flag=1"]))
        for action in value_actions(parser):
            kind, bad = value_class(action, command)
            default = action.default if isinstance(action.default, str) else None
            for value in bad:
                if value == default:  # the default is not a bad value (sites --position -1: last before EOS)
                    continue
                label = value if len(value) <= 24 else f"{value[:12]}...({len(value)})"
                cases.append((f"{command}:{flag_of(action)}={label}", f"{command} {flag_of(action)}", kind,
                              fuzzed_argv(command, parser, action, value)))
    return cases


def sampled_cases(budget: int = 1000, seed: int = 0) -> list[tuple[str, str, str, list[str]]]:
    """Every case while they fit the budget (30 ms a case in-process, so the file stays under a
    minute on one core); past it, a deterministic sample that keeps every flag and every (kind,
    bad value) at least once, topped up at random to the budget."""
    cases = all_cases()
    if len(cases) <= budget:
        return cases
    rng = random.Random(seed)
    keep, seen_flags, seen_values = [], set(), set()
    for case in rng.sample(cases, len(cases)):
        case_id, flag, kind, _ = case
        value = case_id.split("=", 1)[-1]
        if flag not in seen_flags or (kind, value) not in seen_values:
            keep.append(case)
            seen_flags.add(flag)
            seen_values.add((kind, value))
    rest = [c for c in cases if c not in keep]
    keep += rng.sample(rest, max(0, budget - len(keep)))
    return sorted(keep, key=cases.index)


CASES = sampled_cases()


def snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every file and folder under `folders` (and of the names in ROOT)."""
    seen = {}
    for folder in folders:
        for where, dirs, files in os.walk(folder):
            for name in (*dirs, *files):
                path = os.path.join(where, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                seen[path] = (st.st_mtime_ns, st.st_size) if name in files else (0, 0)
    for name in os.listdir(ROOT):  # `--out ''` would be the working folder
        seen[str(ROOT / name)] = (0, 0)
    return seen


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    """A folder for the cases' paths: a valid web-viewer file and a regular file (not a folder)."""
    from engine.query.run import load_inverter, run_query
    from engine.query.types import QueryOptions
    from engine.store.paper_json import write_paper_json

    folder = tmp_path_factory.mktemp("fuzz")
    inv = load_inverter("counting")
    result = run_query(inv, QUERY, "x1.post", ":", QueryOptions(candidates=8, colour=True))
    write_paper_json(result, Path(PAPER_FILE.replace(TMP, str(folder))))
    (folder / "a-file").write_text("not a folder\n")
    return folder


@pytest.fixture(scope="module")
def untouched(tmp):
    """The bundled models, the data folder and TMP, as they are before any case, and their bytes."""
    from engine.store.folders import user_data_dir

    folders = (ROOT / "models", user_data_dir(), tmp)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    before = snapshot(*folders), digest(ROOT / "models")
    yield folders, before
    assert digest(ROOT / "models") == before[1], "a case changed a bundled model's files"


# A guard against a bad value let through into minutes of real work (training, a whole map): the
# case is stopped and fails. Generous, so that a loaded machine never trips it; no case is timed.
CASE_SECONDS = 120


class TookTooLong(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int):
    """Interrupt the block after `seconds` (where the platform has SIGALRM and this is the main thread)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum, frame):
        raise TookTooLong(f"still running after {seconds} s: the bad value was not refused before the work")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def resolve(argv: list[str], tmp: Path) -> list[str]:
    return [a.replace(TMP, str(tmp)) for a in argv]


def test_every_subcommand_has_a_base():
    assert set(BASE) == set(subparsers())


SLOW_BASES = {"train-probed", "train-decoder", "eval-probed"}  # 3 minutes, 5 s, 5 s: run by hand, exit 0


@pytest.mark.parametrize("command", [c for c in BASE if c not in SLOW_BASES])
def test_the_base_arguments_are_valid(command, tmp, capsys):
    """With nothing fuzzed the command runs, so each case fails for its fuzzed flag, not its base."""
    assert main(resolve([command, *BASE[command]], tmp)) == 0, capsys.readouterr().err[-500:]


def test_every_flag_is_fuzzed():
    flags = {f"{command} {flag_of(a)}" for command, p in subparsers().items() for a in value_actions(p)}
    assert flags <= {flag for _, flag, _, _ in CASES}


def test_a_sample_still_fuzzes_every_flag():
    small = sampled_cases(budget=50)
    assert small == sampled_cases(budget=50)  # deterministic
    assert {flag for _, flag, _, _ in small} == {flag for _, flag, _, _ in all_cases()}


def test_the_cases_are_the_parsers_own():
    """A flag added to a parser gets cases without this file changing."""
    parser = subparsers()["query"]
    parser.add_argument("--new-count", type=values.rows)
    action = parser._actions[-1]
    kind, bad = value_class(action)
    assert kind == "number" and {"-1", "0", "nan", "1e309", "²"} <= set(bad)
    argv = fuzzed_argv("query", parser, action, "nan")
    assert argv[-1] == "--new-count=nan" and argv.count("--candidates") == 1


@pytest.mark.parametrize("case_id,flag,kind,argv", CASES, ids=[c[0] for c in CASES])
def test_bad_value_is_one_line_and_exit_2(case_id, flag, kind, argv, tmp, untouched, capsys):
    folders, (before, _) = untouched
    with deadline(CASE_SECONDS):  # a bad value let through would start real work: stop it, fail the case
        code = main(resolve(argv, tmp))
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}; stderr: {err[-500:]}"
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err[-2000:]
    assert snapshot(*folders) == before, "the case wrote or removed something"


REAL_PROCESS = [
    ["query", "--model", "counting", "--text", QUERY, "--site", "x1.post", "--position", ":", "--candidates=nan"],
    ["sites", "--model", "n" * 300],
    ["query", "--model", "counting", "--text", QUERY, "--site", "a99.0", "--position", ":"],
    ["flow", "--model", "counting", "--text", QUERY, "--json", "/dev/full"],
]


@pytest.mark.parametrize("argv", REAL_PROCESS, ids=["number", "long-name", "site", "device-output"])
def test_the_real_entry_point_says_the_same(argv, tmp, capsys):
    """A few cases through `python main.py`, as a user runs it: what main() says in-process."""
    done = run_cli(*argv)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert done.returncode == 2 and done.stderr == err and done.stdout == ""


# ---- what the flags alone do not cover: a combination, the environment, the output pipe -----------
def with_flags(command: str, **flags: str) -> list[str]:
    """BASE[command] with these flags' values replaced (or added)."""
    parser = subparsers()[command]
    positionals, options = split_base(parser, BASE[command])
    for flag, value in flags.items():
        options[f"--{flag.replace('_', '-')}"] = [value]
    return [command, *positionals, *(x for flag, vals in options.items() for x in (flag, *vals))]


TORCHRUN = {"RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
TRAIN = ["train-decoder", *BASE["train-decoder"]]


@pytest.mark.parametrize("argv,env,says", [
    (with_flags("train-decoder", heads="7", d_model="128"), {}, "--heads 7 does not divide --d-model 128"),
    (TRAIN, {"WORLD_SIZE": "2"}, "RANK, MASTER_ADDR, MASTER_PORT not set: start several processes "
                                                 "with torchrun --nproc_per_node 2"),
    (TRAIN, {"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a number of processes"),
    (TRAIN, {"WORLD_SIZE": "2", **TORCHRUN, "RANK": "5"}, "RANK '5' of WORLD_SIZE 2"),
], ids=["heads", "world-size", "world-size-text", "rank-past-world"])
def test_a_bad_combination_or_environment_is_one_line(argv, env, says, tmp, untouched, capsys, monkeypatch):
    folders, (before, _) = untouched
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with deadline(CASE_SECONDS):
        code = main(resolve(argv, tmp))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert snapshot(*folders) == before


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`query ... | head -1`: the pipe closes after one line; the rest has no reader, which is
    no error of the command's (exit 141, as for SIGPIPE; nothing on stderr)."""
    import subprocess
    import sys

    argv = ["query", "--model", "counting", "--text", QUERY, "--site", "x1.post", "--position", ":",
            "--candidates", "1024", "--top", "1000"]  # about 100 KB: more than a pipe holds
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode(errors="replace")
    proc.wait(timeout=120)
    assert first.startswith(b"query ") and err == "" and proc.returncode == 141, err[-2000:]
