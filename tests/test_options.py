"""Every numeric and key option of every command, discovered from the real parser: nan, inf,
negative, zero, huge and non-numbers are argparse usage errors naming the option and its
range (exit status 2), or a value the option's help documents. Then the issue's cases through
the installed CLI, and the environment variable that stands in for ``--api-key``."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hifigan.cli import build_parser, main
from hifigan.cli.options import Bounded, env_value, token
from hifigan.errors import HiFiGANError

SRC = Path(__file__).resolve().parents[1] / "src"
VALUES = ("nan", "inf", "-inf", "-1", "0", "1e30", "abc")


PARSER = build_parser()  # parsing leaves a parser as it was: one serves every case
(_SUB,) = [a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)]
COMMANDS: dict[str, argparse.ArgumentParser] = dict(_SUB.choices)


def typed_options(kind) -> list[tuple[str, str]]:
    """``(command, option)`` for every option whose type is ``kind`` (a class or a callable)."""
    found = []
    for name, parser in COMMANDS.items():
        for action in parser._actions:
            matches = (
                isinstance(action.type, kind) if isinstance(kind, type) else action.type is kind
            )
            if action.option_strings and matches:
                found.append((name, action.option_strings[-1]))
    return found


NUMERIC = typed_options(Bounded)


def action_of(command: str, option: str) -> argparse.Action:
    (action,) = [a for a in COMMANDS[command]._actions if option in a.option_strings]
    return action


def required_args(command: str) -> list[str]:
    """Placeholders for the command's required arguments, so that a parse can succeed."""
    args = []
    for action in COMMANDS[command]._actions:
        if not action.option_strings and action.dest != "help":
            args.append("x")
        elif action.required:
            args += [action.option_strings[-1], "x"]
    return args


def parse(capsys, *args: str) -> tuple[int | None, argparse.Namespace | None, str]:
    """``(exit status or None, namespace, stderr)`` of the real parser on ``args``."""
    try:
        namespace = PARSER.parse_args(list(args))
    except SystemExit as e:
        return e.code, None, capsys.readouterr().err
    return None, namespace, capsys.readouterr().err


def test_numeric_options_are_discovered():
    found = set(NUMERIC)
    for case in [("serve", "--max-seconds"), ("serve", "--port"), ("listen", "--per-rater")]:
        assert case in found
    assert {command for command, _ in NUMERIC} >= {
        "serve", "listen", "vocode", "mel", "train", "prepare", "evaluate", "bench", "export",
        "demo",
    }  # fmt: skip
    assert typed_options(token) == [("serve", "--api-key")]


def test_no_option_takes_a_bare_int_or_float():
    """A new numeric option must use a validator of hifigan.cli.options, so it is covered."""
    bare = [
        (name, action.option_strings or action.dest)
        for name, parser in COMMANDS.items()
        for action in parser._actions
        if action.type in (int, float)
    ]
    assert bare == []


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize(("command", "option"), NUMERIC)
def test_each_numeric_option_refuses_out_of_range_values(capsys, command, option, value):
    action = action_of(command, option)
    code, namespace, err = parse(capsys, command, *required_args(command), f"{option}={value}")
    assert "Traceback" not in err
    try:
        number = float(value)
    except ValueError:
        number = None
    accepted = number is not None and action.type.accepts(number)
    if action.type.whole and number is not None and not value.lstrip("-").isdigit():
        accepted = False  # 1e30 and nan are not whole numbers
    if not accepted:
        assert code == 2, err
        names = "/".join(action.option_strings)
        assert err.splitlines()[-1] == (
            f"hifigan {command}: error: argument {names}: expected "
            f"{action.type.describe()}, got {value!r}"
        )
        return
    assert code is None, err
    assert getattr(namespace, action.dest) == number
    # an accepted 0 means something, and the help says what
    assert number > 0 or re.search(r"(?<![\d.])0(?![\d.])", action.help or ""), action.help


@pytest.mark.parametrize("value", ["", " ", "two words", "clé", "k" * 257, "tab\there"])
def test_api_keys_are_visible_ascii_at_start(capsys, value):
    code, _, err = parse(capsys, "serve", f"--api-key={value}")
    assert code == 2 and "argument --api-key: expected 1 to 256 visible ASCII" in err
    assert value.strip() == "" or value not in err  # a refused key is not echoed


def test_accepted_values_are_parsed(capsys):
    code, ns, _ = parse(capsys, "serve", "--max-body-mb=4096", "--port=65535", "--api-key=a:B~1")
    assert code is None and (ns.max_body_mb, ns.port, ns.api_key) == (4096.0, 65535, "a:B~1")
    code, ns, _ = parse(capsys, "listen", "--db", "x", "--port", "0")
    assert code is None and ns.port == 0  # listen prints the port it got
    code, _, err = parse(capsys, "serve", "--port", "0")  # serve does not: refused
    assert code == 2 and "expected a port from 1 to 65535, got '0'" in err
    code, ns, _ = parse(capsys, "bench", "--threads", "1", "1024")
    assert code is None and ns.threads == [1, 1024]
    code, _, err = parse(capsys, "bench", "--threads", "1", "1025")
    assert code == 2 and "argument --threads: expected a whole number from 1 to 1024" in err


def test_the_environment_key_goes_through_the_same_validator(monkeypatch, capsys):
    monkeypatch.setenv("HIFIGAN_API_KEY", "clé")
    with pytest.raises(Exception, match="environment variable HIFIGAN_API_KEY: expected 1 to"):
        env_value("HIFIGAN_API_KEY", token)
    assert main(["serve", "--model", "nope"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: environment variable HIFIGAN_API_KEY: expected 1 to 256 visible ASCII "
        "characters (letters, digits, punctuation; no spaces), got 3 characters with 'é' at "
        "position 3\n"
    )
    monkeypatch.setenv("HIFIGAN_API_KEY", "s3cr3t-key")
    assert env_value("HIFIGAN_API_KEY", token) == "s3cr3t-key"
    monkeypatch.delenv("HIFIGAN_API_KEY")
    assert env_value("HIFIGAN_API_KEY", token) is None


ISSUE_CASES = (
    (
        ["serve", "--max-seconds", "nan"],
        None,
        2,
        "hifigan serve: error: argument --max-seconds: expected a finite number greater "
        "than 0 and at most 86400, got 'nan'",
    ),
    (
        ["serve", "--max-body-mb", "inf"],
        None,
        2,
        "hifigan serve: error: argument --max-body-mb: expected a finite number from "
        "0.001 to 4096, got 'inf'",
    ),
    (
        ["serve", "--max-batch-seconds", "nan"],
        None,
        2,
        "hifigan serve: error: argument --max-batch-seconds: expected a finite number "
        "from 0 to 86400, got 'nan'",
    ),
    (
        ["serve", "--port", "99999"],
        None,
        2,
        "hifigan serve: error: argument --port: expected a port from 1 to 65535, got '99999'",
    ),
    (
        ["serve", "--api-key", "clé"],
        None,
        2,
        "hifigan serve: error: argument --api-key: expected 1 to 256 visible ASCII "
        "characters (letters, digits, punctuation; no spaces), got 3 characters with 'é' "
        "at position 3",
    ),
    (
        ["serve", "--model", "nope"],
        {"HIFIGAN_API_KEY": "clé"},
        1,
        "error: environment variable HIFIGAN_API_KEY: expected 1 to 256 visible ASCII "
        "characters (letters, digits, punctuation; no spaces), got 3 characters with 'é' "
        "at position 3",
    ),
)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE: expected a whole number from 1 to 65536, got 'abc'"),
        ({"WORLD_SIZE": "nan"}, "WORLD_SIZE: expected a whole number from 1 to 65536, got 'nan'"),
        (
            {"WORLD_SIZE": "2", "RANK": "-1"},
            "RANK: expected a whole number from 0 to 65535, got '-1'",
        ),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK: 2 is not a process of WORLD_SIZE 2"),
    ],
)
def test_launcher_variables_are_checked_as_options(monkeypatch, capsys, tmp_path, env, message):
    """``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (torchrun's) choose work like options do."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["vocode", "-", "-o", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"error: environment variable {message}\n"
    assert not (tmp_path / "out").exists()


def test_library_switches_are_checked_as_options(monkeypatch):
    """``HIFIGAN_NATIVE`` and ``HIFIGAN_MALLOC`` switch behaviour like options: a value that
    means neither setting is an error, not silently the default."""
    from hifigan.allocator import keep_freed_memory
    from hifigan.inference import narrow

    monkeypatch.setenv("HIFIGAN_NATIVE", "off")
    with pytest.raises(HiFiGANError) as failure:
        narrow.describe()
    assert (
        str(failure.value) == "environment variable HIFIGAN_NATIVE: expected '0' or '1', got 'off'"
    )
    monkeypatch.setenv("HIFIGAN_NATIVE", "0")
    assert narrow.load() is None and "off (HIFIGAN_NATIVE=0)" in narrow.describe()
    monkeypatch.setenv("HIFIGAN_MALLOC", "sytem")
    with pytest.raises(HiFiGANError, match="HIFIGAN_MALLOC: expected 'system' or 'default', got"):
        keep_freed_memory()
    monkeypatch.setenv("HIFIGAN_MALLOC", "System")
    assert keep_freed_memory() is False


def test_the_issue_cases_through_the_cli():
    """Each case in a real ``hifigan`` process, all of them side by side."""
    running = []
    for args, env, *_ in ISSUE_CASES:
        environment = {**os.environ, "PYTHONPATH": str(SRC)}
        environment.pop("HIFIGAN_API_KEY", None)
        running.append(
            subprocess.Popen(
                [sys.executable, "-m", "hifigan", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**environment, **(env or {})},
            )
        )
    for process, (args, _, status, last_line) in zip(running, ISSUE_CASES, strict=True):
        _, err = process.communicate(timeout=300)
        assert process.returncode == status, (args, err)
        assert "Traceback" not in err
        assert err.splitlines()[-1] == last_line
        if status == 1:
            assert len(err.splitlines()) == 1, err


# ---------------------------------------------------------------- device, backend, precision
MODEL_COMMANDS = {"vocode", "serve", "demo", "evaluate"}


def single_value_options(option: str) -> dict[str, argparse.Action]:
    """``command -> action`` for every command with ``option`` taking one value (bench's
    lists are its own)."""
    found = {}
    for name, parser in COMMANDS.items():
        for action in parser._actions:
            if option in action.option_strings and action.nargs is None:
                found[name] = action
    return found


def test_device_backend_and_precision_have_one_definition():
    """Every command that runs a model offers the same three options, with the library's
    defaults (auto, auto, fp32) and the registries' names; train's --device is the same."""
    from hifigan.inference.backends import BACKEND_CHOICES, BACKENDS
    from hifigan.precision import PRECISIONS

    devices = single_value_options("--device")
    backends = single_value_options("--backend")
    precisions = single_value_options("--precision")
    assert set(devices) == MODEL_COMMANDS | {"train"}
    assert set(backends) == set(precisions) - {"train"} == MODEL_COMMANDS
    assert {a.default for a in devices.values()} == {"auto"}
    assert len({a.help.split(": ", 1)[1] for a in devices.values()}) == 1
    for command in MODEL_COMMANDS:
        backend, precision = backends[command], precisions[command]
        assert (backend.default, tuple(backend.choices)) == ("auto", BACKEND_CHOICES)
        assert (precision.default, list(precision.choices)) == ("fp32", list(PRECISIONS))
        assert backend.help == backends["vocode"].help
        assert "fast on cpu, eager on cuda" in backend.help  # from resolve_backend itself
    bench = action_of("bench", "--backend")  # bench times explicit lists
    assert (bench.default, tuple(bench.choices)) == (["eager", "fast"], BACKENDS)
    assert action_of("bench", "--device").default == ["cpu"]


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
def test_an_unknown_backend_is_a_usage_error(capsys, command):
    code, _, err = parse(capsys, command, *required_args(command), "--backend", "tensorrt")
    assert code == 2
    assert "argument --backend: invalid choice: 'tensorrt'" in err.splitlines()[-1]
    assert "auto" in err.splitlines()[-1] and "Traceback" not in err


def test_backend_note_names_what_runs(monkeypatch):
    from hifigan.cli.options import backend_note

    assert backend_note("auto", "cpu") == (
        "backend: fast (auto on cpu; --backend eager for the reference path)"
    )
    assert backend_note("eager", "cpu") == "backend: eager"
    assert backend_note("auto", "cpu", "bf16") == (
        "backend: fast, bf16 (auto on cpu: the backend that runs bf16)"
    )
    with pytest.raises(HiFiGANError, match="unknown device 'gpu'"):
        backend_note("auto", "gpu")
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)  # no GPU is touched
    assert backend_note("auto", "auto").startswith("backend: eager (auto on cuda: the reference")
    assert backend_note("auto", "cuda:1", "fp16").startswith("backend: fast, fp16 (auto on cuda")
