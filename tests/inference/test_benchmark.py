"""``hifigan bench``: the table and the JSON describe what was timed, consistently."""

import json
import re

import pytest
import torch

from hifigan import HiFiGANConfig, HiFiGANError
from hifigan.inference import benchmark
from hifigan.inference.benchmark import BenchResult, format_table, time_calls, timed_call
from hifigan.precision import bf16_supported

from conftest import LJ_V2, need

FAST_CASES = [("eager", "fp32"), ("fast", "fp32"), ("fast", "bf16")]


def test_bench_json_for_presets_and_backends(run_cli):
    code, out, err = run_cli(
        "bench", "--preset", "v3", "v2", "--backend", "eager", "fast",
        "--precision", "fp32", "bf16", "--seconds", "0.2", "--repeats", "2", "--warmup", "0",
        "--threads", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    results = json.loads(out)
    cases = [(r["model"], r["backend"], r["precision"]) for r in results]
    bf16 = bf16_supported("cpu")
    expected = [(m, b, p) for m in ("v3", "v2") for b, p in FAST_CASES if bf16 or p == "fp32"]
    assert cases == expected
    if not bf16:
        assert "skipped v3 fast/bf16/cpu: bf16 has no kernels on this cpu" in err
    assert "skipped v3 eager/bf16/cpu: backend 'eager' runs in fp32 only" in err
    for r in results:
        samples = round(0.2 * 22050 / 256) * 256
        assert len(r["times"]) == 2 and r["threads"] == 1 and r["device"] == "cpu"
        assert r["khz"] == pytest.approx(samples / r["median_s"] / 1000)
        assert r["x_realtime"] == pytest.approx(r["khz"] * 1000 / 22050)
    params = {r["model"]: r["params_m"] for r in results}
    assert params == {"v3": 1.462273, "v2": 0.925985}  # golden counts, weight norm folded


@pytest.mark.slow
def test_bench_table_for_a_checkpoint(run_cli):
    code, out, err = run_cli(
        "bench", "--checkpoint", need(LJ_V2), "--backend", "onnx", "--seconds", "0.1",
        "--repeats", "1", "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    header, _, row = out.splitlines()[:3]
    assert header.split() == [
        "Model", "Params", "(M)", "Backend", "Precision", "Device", "Threads",
        "kHz", "x", "real", "time",
    ]  # fmt: skip
    assert row.split()[:6] == ["generator_v2", "0.93", "onnx", "fp32", "cpu", "1"]
    assert "median of 1 calls" in out


def test_bench_says_whether_fast_runs_the_narrow_kernel(run_cli, monkeypatch):
    from hifigan.inference import narrow

    args = ("bench", "--preset", "v2", "--backend", "fast", "--seconds", "0.1", "--repeats", "1")
    code, out, err = run_cli(*args)
    assert code == 0, err
    if narrow.compiler_command() is not None:
        assert f"narrow-stage kernel: {narrow.load().path}" in out
    monkeypatch.setenv("HIFIGAN_NATIVE", "0")
    code, out, _ = run_cli(*args)
    assert code == 0
    assert "narrow-stage kernel: off (HIFIGAN_NATIVE=0); oneDNN runs those stages" in out
    monkeypatch.setenv("HIFIGAN_NATIVE", "1")
    monkeypatch.setenv("CC", "no-such-compiler")
    assert "no C compiler ('no-such-compiler' not found)" in run_cli(*args)[1]
    code, out, _ = run_cli("bench", "--preset", "v2", "--backend", "eager", "--seconds", "0.1")
    assert "narrow-stage kernel" not in out


def test_bench_times_auto_as_the_device_it_stands_for(run_cli):
    """``--device auto`` among the listed devices is named as what it resolved to, once."""
    code, out, err = run_cli(
        "bench", "--preset", "v3", "--backend", "fast", "--device", "auto", "cpu",
        "--seconds", "0.1", "--repeats", "1", "--warmup", "0", "--threads", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert [r["device"] for r in json.loads(out)] == list(dict.fromkeys([expected, "cpu"]))


def test_bench_needs_a_model_and_valid_numbers(run_cli):
    code, _, err = run_cli("bench")
    assert code == 1 and "no model given" in err
    with pytest.raises(SystemExit, match="2"):  # a usage error: tests/test_options.py
        run_cli("bench", "--preset", "v3", "--repeats", "0")
    code, _, err = run_cli("bench", "--preset", "v3", "--backend", "eager", "--precision", "bf16")
    assert code == 1 and "no supported combination" in err


def test_time_calls_alternates_and_format_table_aligns():
    order = []
    times = time_calls({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3)
    assert order == ["a", "b"] * 4  # one warm-up each, then round-robin
    assert [len(t) for t in times.values()] == [3, 3]
    result, seconds = timed_call(lambda: order.append("c") or 42, "cpu")
    assert result == 42 and order[-1] == "c" and seconds >= 0
    result = BenchResult("m", 1.0, "fast", "fp32", "cpu", 2, 1, 10.0, 0.5, 441.0, 20.0)
    lines = format_table([result]).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].split() == ["m", "1.00", "fast", "fp32", "cpu", "2", "441.0", "20.00"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_bench_skips_cuda_without_a_gpu(run_cli):
    code, _, err = run_cli("bench", "--preset", "v3", "--device", "cuda", "--backend", "fast")
    assert code == 1
    assert "skipped v3 fast/fp32/cuda: device 'cuda' requested, but CUDA is not available" in err
    assert "error: no supported combination of backend, precision and device to time" in err


def test_bench_refuses_more_audio_than_memory_holds(run_cli):
    code, out, err = run_cli(
        "bench", "--preset", "v2", "--seconds", "3600", "--batch", "1024", "--backend", "eager"
    )
    assert code == 1 and out == ""
    assert re.fullmatch(
        r"error: 3600 s of audio at batch 1024 needs about 600 GB of memory on cpu, more than "
        r"the \d[\d.]* [KMGT]?B available \(at most about [\d.e+]+ s fit\)\n",
        err,
    ), err


def test_memory_limit_is_the_estimate_for_the_largest_run_that_fits(monkeypatch):
    config = HiFiGANConfig.preset("v1")
    monkeypatch.setattr(benchmark, "available_memory", lambda device: 10**9)
    with pytest.raises(HiFiGANError) as caught:
        benchmark.check_memory(config, seconds=3600, batch=2, device=torch.device("cpu"))
    message = str(caught.value)
    fit = float(re.search(r"at most about ([\d.e+]+) s fit", message).group(1))
    assert message.startswith("3600 s of audio at batch 2 needs about 2.18 GB of memory on cpu")
    frames = benchmark.bench_frames(config, fit)
    assert benchmark.synthesis_bytes(config, frames, 2) <= 1.01e9  # fits (3 digits shown)
    assert benchmark.synthesis_bytes(config, int(frames * 1.02), 2) > 1e9
    # the estimate: input, output and one block's activations (V1: 0.3-1 MB per frame)
    assert 0.3e6 < benchmark.synthesis_bytes(config, 1, 1) < 1e6
    benchmark.check_memory(config, seconds=fit * 0.99, batch=2, device=torch.device("cpu"))
    with pytest.raises(HiFiGANError):  # inputs of other cases already held count too
        benchmark.check_memory(
            config, seconds=fit * 0.99, batch=2, device=torch.device("cpu"), held=10**8
        )
