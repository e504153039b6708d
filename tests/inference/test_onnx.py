"""ONNX export: the written file, run by ONNX Runtime alone, reproduces the eager generator."""

import contextlib
import io
import json

import numpy as np
import pytest

from hifigan import Generator, HiFiGANConfig, Vocoder
from hifigan.checkpoint import save_checkpoint
from hifigan.inference import ExportError, export_onnx
from hifigan.inference.onnx import OPSET, max_opset, model_opset
from inference_helpers import log_mel, random_generator

from conftest import GOLDEN, LJ_V2, need

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def lj_v2_export(tmp_path_factory):
    """``hifigan export`` of the authors' LJ_V2, once for the module: (file, stdout)."""
    from hifigan.cli import main

    out = tmp_path_factory.mktemp("onnx") / "lj_v2.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            ["export", "--checkpoint", str(need(LJ_V2)), "--format", "onnx", "-o", str(out)]
        )
    assert code == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def lj_v2_onnx(lj_v2_export):
    return lj_v2_export[0]


def test_export_cli_reports_the_check(lj_v2_export):
    out, stdout = lj_v2_export
    assert stdout.startswith(f"wrote {out} (")
    assert "ONNX Runtime matches eager within" in stdout
    assert "(batch 2 x 1, 37, 200 frames)" in stdout
    assert not list(out.parent.glob(".*tmp"))


def test_onnx_runtime_alone_reproduces_the_golden_output(lj_v2_onnx):
    session = ort.InferenceSession(str(lj_v2_onnx), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("mel", "audio")
    assert inp.shape[1] == 80 and isinstance(inp.shape[2], str)  # dynamic frame axis
    data = np.load(need(GOLDEN / "generator_lj_v2_LJ001-0001.npz"))
    audio = session.run(None, {"mel": data["mel"][None].astype(np.float32)})[0]
    assert audio.shape == (1, 1, data["wav"].shape[0])
    assert np.abs(audio[0, 0] - data["wav"]).max() < 1e-4


def test_onnx_file_has_dynamic_batch_and_frames_and_metadata(lj_v2_onnx):
    session = ort.InferenceSession(str(lj_v2_onnx), providers=["CPUExecutionProvider"])
    vocoder = Vocoder.from_checkpoint(need(LJ_V2), backend="eager")
    for batch, frames in ((3, 1), (2, 57)):
        mel = log_mel(frames, batch=batch).numpy()
        audio = session.run(None, {"mel": mel})[0]
        assert audio.shape == (batch, 1, frames * 256)
        assert np.abs(audio[:, 0] - vocoder(mel).numpy()).max() < 1e-4
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["hifigan.sample_rate"] == "22050"
    assert meta["hifigan.hop_length"] == "256"
    assert (meta["hifigan.context_left_frames"], meta["hifigan.context_right_frames"]) == (
        "13",
        "13",
    )
    config = HiFiGANConfig.from_dict(json.loads(meta["hifigan.config"]))
    assert config.generator.upsample_initial_channel == 128


def test_failed_parity_check_writes_nothing(tmp_path):
    generator, config = random_generator("v3")
    out = tmp_path / "strict.onnx"
    with pytest.raises(ExportError, match="ONNX Runtime output differs from eager by"):
        export_onnx(generator, config, out, tolerance=0.0)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_of_our_checkpoint_with_weight_norm(run_cli, tmp_path):
    """Our format (weight norm kept, config inside) exports, and the source stays usable."""
    config = HiFiGANConfig.preset("v3")
    generator = Generator.from_config(config)
    save_checkpoint(tmp_path / "g.pt", config, generator)
    code, _, err = run_cli("export", "--checkpoint", tmp_path / "g.pt", "-o", tmp_path / "g.onnx")
    assert code == 0, err
    assert generator(log_mel(2, batch=1)).shape == (1, 1, 512)


def test_export_errors_are_one_line(run_cli, tmp_path):
    code, _, err = run_cli("export", "--checkpoint", tmp_path / "none.pt", "-o", tmp_path / "x")
    assert code == 1
    assert err.strip() == f"error: {tmp_path / 'none.pt'}: checkpoint not found"
    code, _, err = run_cli("export", "-o", tmp_path / "x.onnx")
    assert code == 1 and "no model given" in err


def test_the_reported_opset_is_the_one_in_the_file(lj_v2_export):
    out, stdout = lj_v2_export
    assert model_opset(out) == OPSET
    assert f"MB, opset {OPSET}); ONNX Runtime matches eager" in stdout


def test_an_opset_the_exporter_cannot_produce_is_refused(run_cli, tmp_path):
    supported = (
        f"supported opsets: {OPSET} to {max_opset()} (older ones only where the conversion "
        f"from {OPSET} succeeds)"
    )
    ckpt = need(LJ_V2)
    # the exporter writes opset 18, fails to convert it down to 7 and keeps 18
    code, out, err = run_cli(
        "export", "--checkpoint", ckpt, "-o", tmp_path / "x.onnx", "--opset", "7"
    )
    assert (code, out) == (1, "")
    assert err == (
        f"error: cannot export opset 7: the exporter could not convert its opset-18 graph to "
        f"it; {supported}\n"
    )
    newest = max_opset() + 1
    code, out, err = run_cli(
        "export", "--checkpoint", ckpt, "-o", tmp_path / "x.onnx", "--opset", str(newest)
    )
    assert (code, out, err) == (1, "", f"error: cannot export opset {newest}: {supported}\n")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # the refused opset stands for the opset choice in the default run
def test_an_older_opset_is_honoured_when_the_conversion_succeeds(tmp_path):
    generator, config = random_generator("v3")
    report = export_onnx(generator, config, tmp_path / "v3.onnx", opset=17)
    assert report.opset == model_opset(tmp_path / "v3.onnx") == 17
    assert report.max_abs_diff < 1e-4
