"""Exact streaming, long inputs in blocks, and batches of different lengths."""

import pytest
import torch

from hifigan import HiFiGANConfig, InputError, Vocoder
from hifigan.inference.streaming import (
    MelStream,
    receptive_field,
    synthesize_batch,
    synthesize_blocks,
)
from inference_helpers import log_mel, max_diff, random_generator, random_vocoder


@pytest.mark.parametrize(("preset", "frames"), [("v1", 13), ("v2", 13), ("v3", 11)])
def test_receptive_field_from_the_config(preset, frames):
    field = receptive_field(HiFiGANConfig.preset(preset).generator)
    assert (field.left, field.right) == (frames, frames)


@pytest.mark.parametrize("preset", ["v1", "v2", "v3"])
def test_receptive_field_is_exactly_what_a_perturbation_reaches(preset):
    """Changing frame f changes exactly output frames f - right ... f + left."""
    generator, config = random_generator(preset)
    field = receptive_field(config.generator)
    mel = log_mel(40, batch=1)
    changed = mel.clone()
    changed[:, :, 20] += 3.0
    with torch.no_grad():
        diff = (generator(changed) - generator(mel)).abs()[0, 0].reshape(40, 256).amax(dim=1)
    touched = torch.nonzero(diff > 0).flatten().tolist()
    assert touched == list(range(20 - field.right, 20 + field.left + 1))


def stream_all(vocoder, mel, chunk):
    pieces = list(vocoder.stream(mel[:, i : i + chunk] for i in range(0, mel.shape[1], chunk)))
    return torch.cat(pieces), pieces


@pytest.mark.parametrize(
    ("preset", "backend", "frames"), [("v2", "eager", 50), ("v3", "eager", 50), ("v1", "fast", 30)]
)
def test_streaming_equals_offline_for_any_chunk_size(preset, backend, frames):
    offline = random_vocoder(preset, backend="eager")
    vocoder = random_vocoder(preset, backend=backend)
    mel = log_mel(frames)
    reference = offline(mel)
    for chunk in (1, 7, 32):
        audio, _ = stream_all(vocoder, mel, chunk)
        assert audio.shape == reference.shape
        assert max_diff(audio, reference) < 1e-4, chunk


def test_stream_yields_each_frame_once_it_is_final():
    vocoder = random_vocoder("v3")
    right = vocoder.latency_frames
    pushed = []
    stream = vocoder.streamer()
    for i in range(20):
        pushed.append(stream.push(log_mel(1, seed=i)).shape[1] // 256)
    pushed.append(stream.finish().shape[1] // 256)
    # nothing until `right` frames of future context exist, then one frame per frame
    assert pushed == [0] * right + [1] * (20 - right) + [right]
    assert vocoder.latency_seconds == pytest.approx(right * 256 / 22050)


def test_stream_edge_cases():
    vocoder = random_vocoder("v2")
    short = log_mel(3)
    audio, pieces = stream_all(vocoder, short, 1)
    assert len(pieces) == 1 and max_diff(audio, vocoder(short)) < 1e-4  # all held back
    empty = torch.zeros(80, 0)
    audio = torch.cat(list(vocoder.stream([empty, short, empty])))
    assert max_diff(audio, vocoder(short)) < 1e-4
    assert list(vocoder.stream([])) == []
    with pytest.raises(
        InputError,
        match=r"^chunk 1 of the stream: mel must have shape \(80, frames\), got \(79, 4\)$",
    ):
        list(vocoder.stream([short, torch.zeros(79, 4)]))
    stream = vocoder.streamer()
    stream.finish()
    with pytest.raises(InputError, match="the stream is finished"):
        stream.push(short)


@pytest.mark.parametrize("preset", ["v2", "v3"])
def test_long_inputs_are_synthesized_in_blocks_exactly(preset):
    generator, config = random_generator(preset)
    mel = log_mel(60)
    reference = Vocoder(generator, config)(mel)
    blocked = Vocoder(generator, config, block_frames=16)
    assert max_diff(blocked(mel), reference) < 1e-4
    calls = []

    def spy(x):
        calls.append(x.shape[2])
        return blocked.backend(x)

    field = receptive_field(config.generator)
    out = synthesize_blocks(spy, mel.unsqueeze(0), field=field, hop_length=256, block_frames=16)
    assert max_diff(out[0], reference) < 1e-4
    assert max(calls) <= 16 + field.left + field.right  # bounded windows


def test_batched_lists_equal_one_by_one():
    vocoder = random_vocoder("v2")
    lengths = [50, 3, 27, 50, 40, 14]
    mels = [log_mel(n, seed=i) for i, n in enumerate(lengths)]
    outputs = vocoder(mels)
    assert [o.shape[0] for o in outputs] == [n * 256 for n in lengths]
    for out, mel in zip(outputs, mels):
        assert max_diff(out, vocoder(mel)) < 1e-4
    assert vocoder([]) == []


def test_padding_changes_only_the_documented_edge_region():
    """Without the tail recomputation, zero padding changes exactly the last `right` frames."""
    vocoder = random_vocoder("v3")
    right = vocoder.latency_frames
    mels = [log_mel(60, seed=1), log_mel(35, seed=2)]
    raw = synthesize_batch(
        vocoder.backend, mels, field=vocoder.receptive_field, hop_length=256, exact_tails=False
    )
    alone = vocoder(mels[1])
    diff = (raw[1] - alone).abs().reshape(35, 256).amax(dim=1)
    assert diff[: 35 - right].max() < 1e-4
    assert (diff[35 - right :] > 0).all()
    assert max_diff(raw[0], vocoder(mels[0])) < 1e-4  # the longest item is not padded


def test_batched_list_errors_name_the_item():
    vocoder = random_vocoder("v3")
    with pytest.raises(
        InputError,
        match=r"^mel 1 of the list: mel must have shape \(80, frames\), got \(2, 80, 4\)$",
    ):
        vocoder([log_mel(4), log_mel(4, batch=2)])
    with pytest.raises(InputError, match=r"^mel 1 of the list: mel has no frames$"):
        vocoder([log_mel(4), torch.zeros(80, 0)])


def test_mel_stream_takes_batches():
    generator, config = random_generator("v3")
    field = receptive_field(config.generator)
    mel = log_mel(30, batch=2)
    with torch.no_grad():
        reference = generator(mel).squeeze(1)

        def synth(x):
            return generator(x).squeeze(1)

        stream = MelStream(synth, field=field, hop_length=256, n_mels=80)
        pieces = [stream.push(mel[:, :, i : i + 4]) for i in range(0, 30, 4)]
        pieces.append(stream.finish())
    assert max_diff(torch.cat(pieces, dim=1), reference) < 1e-4
