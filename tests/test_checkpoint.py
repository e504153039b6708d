import shutil

import pytest
import torch

from hifigan import (
    CheckpointError,
    Generator,
    HiFiGANConfig,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    Vocoder,
)
from hifigan.checkpoint import (
    export_authors_discriminators,
    export_authors_generator,
    from_authors_keys,
    load_generator,
    read_checkpoint,
    save_checkpoint,
    to_authors_keys,
)

from conftest import GOLDEN, LJ_V2, need


def test_authors_checkpoint_round_trips_through_ours(tmp_path):
    original = torch.load(need(LJ_V2), map_location="cpu", weights_only=True)["generator"]
    generator, cfg = load_generator(LJ_V2)
    assert generator.has_weight_norm
    save_checkpoint(tmp_path / "ours.pt", cfg, generator)
    ours, cfg2 = load_generator(tmp_path / "ours.pt")  # config comes from the file itself
    assert cfg2 == cfg
    export_authors_generator(ours, tmp_path / "g_00000001")
    back = torch.load(tmp_path / "g_00000001", weights_only=True)["generator"]
    assert list(back) == list(original)
    for key, value in original.items():
        assert torch.equal(back[key], value), key


def test_discriminator_file_round_trips(tmp_path, fill):
    mpd, msd = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
    for m in (mpd, msd):
        m.load_state_dict(from_authors_keys(fill(to_authors_keys(m.state_dict()))))
    export_authors_discriminators(
        tmp_path / "do_1", mpd=mpd, msd=msd, optim_g={}, optim_d={}, steps=7, epoch=2
    )
    data = read_checkpoint(tmp_path / "do_1")
    assert set(data) == {"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}
    assert "discriminators.0.convs.0.weight_g" in data["mpd"]
    assert "discriminators.0.convs.0.weight_orig" in data["msd"]  # spectral norm keys kept
    mpd2, msd2 = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
    mpd2.load_state_dict(from_authors_keys(data["mpd"]))
    msd2.load_state_dict(from_authors_keys(data["msd"]))
    for a, b in ((mpd, mpd2), (msd, msd2)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)


def test_config_is_found_beside_the_checkpoint(tmp_path):
    shutil.copy(need(LJ_V2), tmp_path / "generator_v2")
    with pytest.raises(CheckpointError, match="no config: the checkpoint carries none"):
        Vocoder.from_checkpoint(tmp_path / "generator_v2")
    shutil.copy(LJ_V2.parent / "config.json", tmp_path / "config.json")
    assert (
        Vocoder.from_checkpoint(tmp_path / "generator_v2").config.generator.upsample_initial_channel
        == 128
    )


def test_folded_weights_load_too(tmp_path):
    torch.manual_seed(0)
    g = Generator.from_config(HiFiGANConfig.preset("v3"))
    mel = torch.randn(1, 80, 10)
    with torch.no_grad():
        expected = g(mel)
    save_checkpoint(tmp_path / "folded.pt", HiFiGANConfig.preset("v3"), g.remove_weight_norm())
    vocoder = Vocoder.from_checkpoint(tmp_path / "folded.pt")
    assert (vocoder(mel) - expected[:, 0]).abs().max() < 1e-5


def test_checkpoint_that_does_not_match_the_config():
    with pytest.raises(CheckpointError) as e:
        load_generator(need(LJ_V2), "v1")
    msg = str(e.value)
    assert msg.startswith(f"{LJ_V2}: generator weights do not match the config")
    assert (
        "232 tensors of another shape"
        " (conv_pre.bias is (128,) in the checkpoint but (512,) in the model)" in msg
    )
    assert "\n" not in msg


def test_missing_corrupt_and_truncated_files(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "nothing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(
        CheckpointError,
        match=r"garbage\.pt: cannot read checkpoint: the file is corrupt or truncated",
    ):
        read_checkpoint(garbage)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(need(LJ_V2).read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_checkpoint(truncated)


def test_refuses_pickled_objects(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"generator": HiFiGANConfig()}, path)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    assert str(e.value) == f"{path}: refused: the checkpoint holds Python objects, not just tensors"


def test_malicious_pickle_is_refused_without_torchs_advice(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"generator": Payload()}, path)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    message = str(e.value)
    assert message.endswith("refused: the checkpoint holds Python objects, not just tensors")
    assert "weights_only" not in message and "\n" not in message


def _small_checkpoint(path):
    config = HiFiGANConfig.preset("v3")
    generator = Generator.from_config(config)
    save_checkpoint(path, config, generator)
    return config


def test_our_checkpoints_carry_a_digest_that_catches_flipped_bytes(tmp_path):
    path = tmp_path / "ours.pt"
    _small_checkpoint(path)
    assert set(read_checkpoint(path)["digest"]) == {"generator"}
    data = bytearray(path.read_bytes())
    # flip 50 bytes in the middle of the tensor data (well past the zip headers)
    middle = len(data) // 2
    for i in range(middle, middle + 50):
        data[i] ^= 0x5A
    broken = tmp_path / "flipped.pt"
    broken.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as e:
        load_generator(broken)
    assert str(e.value) == (
        f"{broken}: checkpoint is corrupt: the generator weights do not match their stored sha256"
    )


def test_non_finite_weights_are_refused(tmp_path):
    config = HiFiGANConfig.preset("v3")
    generator = Generator.from_config(config)
    with torch.no_grad():
        generator.conv_post.bias.fill_(float("nan"))
    path = tmp_path / "diverged.pt"
    save_checkpoint(path, config, generator)
    with pytest.raises(CheckpointError, match="checkpoint contains non-finite generator weights"):
        load_generator(path)


def test_non_tensor_values_in_the_generator_state_are_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"generator": {"conv_pre.bias": [1.0, 2.0]}}, path)
    with pytest.raises(CheckpointError, match="1 entries that are not tensors"):
        load_generator(path, "v3")


def test_discriminator_file_is_not_a_generator(tmp_path):
    torch.save({"mpd": {}, "msd": {}, "steps": 0}, tmp_path / "do_0")
    with pytest.raises(CheckpointError, match=r"no generator weights.*discriminator .do_. file"):
        load_generator(tmp_path / "do_0", "v1")


def test_v3_golden_checkpoint_keys_are_the_authors(tmp_path):
    state = read_checkpoint(need(GOLDEN / "g_v3_random_seed1234"))["generator"]
    assert "resblocks.0.convs.0.weight_g" in state
    ours = to_authors_keys(Generator.from_config(HiFiGANConfig.preset("v3")).state_dict())
    assert set(ours) == set(state)
