"""``hifigan serve`` as a process: option errors, graceful shutdown, several workers."""

from __future__ import annotations

import re
import signal
import threading

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from serve_helpers import MODEL, lj_v2_spec, npy_bytes, read_wav_bytes, server_process

from inference_helpers import log_mel


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # out-of-range numbers and keys are usage errors (exit 2): tests/test_options.py
        (["--model", "nope"], "unknown model 'nope': not a registered model"),
        (["--model", "a=x.pt", "--model", "a=y.pt"], "two models are named 'a'"),
        (["--model", "bad name=x.pt"], "model name 'bad name' must be letters, digits"),
    ],
)
def test_option_errors(run_cli, options, message):
    code, _, err = run_cli("serve", *options)
    assert code == 1 and message in err


def test_sigterm_lets_pending_requests_finish(tmp_path):
    mel = npy_bytes(log_mel(12).numpy())
    with server_process(
        tmp_path, "--model", lj_v2_spec(), "--max-batch", "2", "--max-wait-ms", "3000"
    ) as running:
        replies: list = []
        pending = threading.Thread(
            target=lambda: replies.append(running.server.post("/v1/vocode", mel))
        )
        pending.start()
        # admitted, and waiting for its batch to fill
        running.server.wait_for_metric(1, "hifigan_queue_depth", model=MODEL)
        running.process.send_signal(signal.SIGTERM)
        pending.join(60)
        # uvicorn re-raises the signal once it has shut down
        assert running.process.wait(30) in (0, -signal.SIGTERM)
    assert replies[0].status == 200
    audio, rate = read_wav_bytes(replies[0].body)
    assert rate == 22050 and audio.shape == (12 * 256,)


def test_workers_share_one_port(tmp_path):
    with server_process(tmp_path, "--model", lj_v2_spec(), "--workers", "2") as running:
        assert running.server.get("/v1/models").json()["default"] == MODEL
        for _ in range(4):
            reply = running.server.post("/v1/vocode", npy_bytes(log_mel(10).numpy()))
            assert reply.status == 200
            assert read_wav_bytes(reply.body)[0].shape == (10 * 256,)
        running.process.terminate()
        assert running.process.wait(60) in (0, -signal.SIGTERM)
    workers = set(re.findall(r"Started server process \[(\d+)\]", running.output()))
    assert len(workers) == 2, running.output()
    # the thread count it chose is said once, at start
    said = re.findall(r"note: torch uses (\d+) CPU threads? per process \((.*)\)", running.output())
    assert len(said) == 1 and int(said[0][0]) >= 1, running.output()
    assert said[0][1] == "the cores idle at start, shared by 2 workers"


def test_the_command_line_defaults_are_the_service_defaults(monkeypatch):
    """Every option that sets a ServeConfig field starts from that field's default, so that
    ``hifigan serve`` without options and ``create_app(ServeConfig())`` serve alike."""
    import argparse
    import dataclasses

    from hifigan.cli import serve as command
    from hifigan.serve import ServeConfig

    monkeypatch.delenv("HIFIGAN_API_KEY", raising=False)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    dests = {action.dest for action in parser._actions}
    fields = [f.name for f in dataclasses.fields(ServeConfig)]
    assert set(fields) - {"models"} <= dests, set(fields) - dests
    assert command.config_from_args(parser.parse_args([])) == ServeConfig()
    changed = command.config_from_args(parser.parse_args(["--max-queue", "3", "--model", "a"]))
    assert changed == dataclasses.replace(ServeConfig(), max_queue=3, models=["a"])
    monkeypatch.setenv("HIFIGAN_API_KEY", "s3cret")
    assert command.config_from_args(parser.parse_args([])).api_key == "s3cret"
    help_text = parser.format_help()
    assert f"(default {ServeConfig().max_queue})" in help_text
    assert f"(default {ServeConfig().host})" in help_text
