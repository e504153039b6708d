"""The narrow-stage C kernel: the same numbers as the reference in every layout, tiling and
thread count; built once per CPU and cached; absent compilers fall back to oneDNN."""

import os

import pytest
import torch

from hifigan.inference import narrow
from hifigan.inference.fast import FastGenerator
from inference_helpers import log_mel, max_diff, random_generator

pytestmark = pytest.mark.skipif(
    narrow.compiler_command() is None, reason="no C compiler ($CC or cc) to build the kernel"
)


@pytest.fixture
def threads():
    """Set torch's thread count for one test (the kernel uses the same count)."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "preset", [pytest.param("v1", marks=pytest.mark.slow), "v2", "v3", "debug"]
)
def test_narrow_stages_match_the_reference(preset, threads):
    """Every preset (each with at least one narrow stage), batch 2, lengths that are and are
    not multiples of the kernel's 48-position blocks, 1-3 threads."""
    generator, _ = random_generator(preset)
    fast = FastGenerator(generator, narrow=True)
    off = FastGenerator(generator, narrow=False)
    assert any(r is not None for r in fast.narrow) and all(r is None for r in off.narrow)
    with torch.no_grad():
        for frames in (3, 19, 48):
            mel = log_mel(frames, batch=2)
            reference = generator(mel)
            for count in (1, 2, 3):
                threads(count)
                out = fast(mel)
                assert out.shape == reference.shape
                assert max_diff(out, reference) < 1e-4, (frames, count)
            assert max_diff(off(mel), reference) < 1e-4


def test_many_small_tiles_each_with_its_halo(monkeypatch, threads):
    """Tiles of one block (48 positions) plus the stage's receptive field on both sides: the
    kept centres must join into exactly the untiled result."""
    generator, _ = random_generator("v2")
    mel = log_mel(40, batch=1)
    with torch.no_grad():
        reference = generator(mel)
        whole = FastGenerator(generator, narrow=True)(mel)
        monkeypatch.setattr(narrow, "TILE_ELEMENTS", 1)
        for count in (1, 2, 5):
            threads(count)
            tiled = FastGenerator(generator, narrow=True)(mel)
            assert max_diff(tiled, whole) < 1e-6, count
    assert max_diff(whole, reference) < 1e-4


def test_channels_last_and_contiguous_inputs_give_the_same_stage():
    generator, _ = random_generator("v2")
    runner = FastGenerator(generator, narrow=True).narrow[2]
    x = torch.randn(2, runner.channels, 1, 1000)
    a = runner(x, 2)
    b = runner(x.contiguous(memory_format=torch.channels_last), 2)
    assert b.is_contiguous(memory_format=torch.channels_last) and a.is_contiguous()
    assert torch.equal(a, b)


def test_an_empty_input_gives_an_empty_stage():
    runner = FastGenerator(random_generator("v2")[0], narrow=True).narrow[3]
    assert runner(torch.zeros(1, runner.channels, 1, 0), 2).shape == (1, 1, 1, 0)


def test_the_kernel_is_built_once_and_reused(tmp_path):
    first = narrow.build(tmp_path)
    assert first is not None and first.parent == tmp_path / "kernels"
    stamp = first.stat().st_mtime_ns
    assert narrow.build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "kernels").iterdir()] == [first.name]  # no leftovers
    assert narrow.load(tmp_path).path == first


def test_without_a_compiler_fast_falls_back_to_onednn(tmp_path, monkeypatch):
    monkeypatch.setenv("HIFIGAN_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert narrow.compiler_command() is None and narrow.load() is None
    generator, _ = random_generator("v2")
    fast = FastGenerator(generator)
    assert all(r is None for r in fast.narrow)
    mel = log_mel(12, batch=1)
    with torch.no_grad():
        assert max_diff(fast(mel), generator(mel)) < 1e-4
    with pytest.raises(RuntimeError, match="could not be built"):
        FastGenerator(generator, narrow=True)


def test_a_failing_compiler_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "false")  # found on PATH, exits 1
    assert narrow.build(tmp_path) is None
    assert list((tmp_path / "kernels").iterdir()) == []


def test_hifigan_native_0_turns_the_kernel_off(monkeypatch):
    monkeypatch.setenv("HIFIGAN_NATIVE", "0")
    assert narrow.load() is None
    assert all(r is None for r in FastGenerator(random_generator("v3")[0]).narrow)


def test_the_cache_key_follows_the_compiler_command(tmp_path, monkeypatch):
    default = narrow.build(tmp_path)
    command = narrow.compiler_command()
    monkeypatch.setattr(narrow, "compiler_command", lambda: [*command, "-O2"])
    other = narrow.build(tmp_path)
    assert other is not None and other != default and os.path.exists(default)


@pytest.mark.skipif(
    __import__("platform").machine() not in ("x86_64", "AMD64"), reason="x86-64 targets only"
)
@pytest.mark.parametrize("march", ["x86-64-v3", pytest.param("x86-64", marks=pytest.mark.slow)])
def test_builds_for_older_x86_cpus_give_the_same_numbers(march, tmp_path, monkeypatch):
    """AVX2 (8-lane vectors) and baseline SSE2 builds of the kernel: the code paths a CPU
    without AVX-512 compiles, run here."""
    command = [a if a != "-march=native" else f"-march={march}" for a in narrow.compiler_command()]
    monkeypatch.setattr(narrow, "compiler_command", lambda: command)
    monkeypatch.setenv("HIFIGAN_CACHE", str(tmp_path))
    if narrow.build(tmp_path) is None:
        pytest.skip(f"this compiler does not know -march={march}")
    generator, _ = random_generator("v3")
    fast = FastGenerator(generator, narrow=True)
    assert fast.narrow[-1].kernel.path.parent == tmp_path / "kernels"
    mel = log_mel(25, batch=2)
    with torch.no_grad():
        assert max_diff(fast(mel), generator(mel)) < 1e-4


def test_copies_and_pickles_run_with_their_own_weights(monkeypatch):
    """deepcopy and pickle (torch.save) keep working; a copy loaded where the kernel cannot
    be built runs those stages on oneDNN."""
    import copy
    import io
    import pickle

    generator, _ = random_generator("v2")
    fast = FastGenerator(generator, narrow=True)
    twin = copy.deepcopy(fast)
    assert twin.narrow[3].convs[0][0].data_ptr() != fast.narrow[3].convs[0][0].data_ptr()
    buffer = io.BytesIO()
    torch.save(fast, buffer)
    monkeypatch.setenv("HIFIGAN_NATIVE", "0")
    stranded = pickle.loads(pickle.dumps(fast))
    assert not any(r is not None and r.usable for r in stranded.narrow)
    monkeypatch.delenv("HIFIGAN_NATIVE")
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert loaded.narrow[3].usable
    mel = log_mel(20, batch=2)
    with torch.no_grad():
        reference = generator(mel)
        for module in (twin, stranded, loaded):
            assert max_diff(module(mel), reference) < 1e-4
