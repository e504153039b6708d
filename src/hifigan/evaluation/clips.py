"""The inputs of an evaluation: a dataset's clips, reference/generated pairs by file stem, and
their audio loaded at the metrics' rate (22.05 kHz) and trimmed to a common length."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import AUDIO_SUFFIXES, load_audio, warn
from ..train.manifest import line_id, read_text_lines, scan_audio, why_unusable
from .metrics import SAMPLE_RATE


def dataset_files(spec: str | Path) -> tuple[str, list[Path]]:
    """A dataset's name and audio files from a folder (all audio files in it, recursively) or a
    list file in LJSpeech/Kathleen layout (``id|text`` lines; audio in ``wavs/<id>.*`` beside it).
    """
    path = Path(spec)
    if path.is_dir():
        scan = scan_audio(path)  # links followed, hidden files passed over, dangling ones named
        files = scan.files
        if not files:
            why = f": {why_unusable(scan.problems)}" if scan.problems else ""
            raise InputError(
                f"folder holds no audio files ({', '.join(AUDIO_SUFFIXES)}){why}", path
            )
        name = path.resolve().parent.name if path.resolve().name == "wavs" else path.resolve().name
        return name, files
    if not path.is_file():
        raise InputError("not found (expected a folder of audio files or an id|text list)", path)
    files = []
    for number, line in enumerate(read_text_lines(path, "list"), start=1):
        clip_id = line_id(line)
        if not clip_id:
            continue
        matches = sorted((path.parent / "wavs").glob(f"{clip_id}.*"))
        audio = [m for m in matches if m.suffix.lower() in AUDIO_SUFFIXES]
        if not audio:
            raise InputError(f"line {number}: no audio file wavs/{clip_id}.* beside the list", path)
        files.append(audio[0])
    if not files:
        raise InputError("list names no clips", path)
    return f"{path.parent.name}-{path.stem}", files


def pair_by_stem(reference_dir: Path, generated_dir: Path) -> list[tuple[str, Path, Path]]:
    """``(stem, reference, generated)`` for every stem present in both folders (sorted).

    Stems present in only one folder are reported with a warning; no common stem is an error.
    """

    def by_stem(folder: Path) -> dict[str, Path]:
        if not folder.is_dir():
            raise InputError("not a folder", folder)
        found: dict[str, Path] = {}
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES:
                if f.stem in found:
                    raise InputError(f"two audio files with stem {f.stem!r}", folder)
                found[f.stem] = f
        return found

    refs, gens = by_stem(reference_dir), by_stem(generated_dir)
    common = sorted(set(refs) & set(gens))
    if not common:
        raise InputError(f"no file stem in common with {reference_dir}", generated_dir)
    missing = sorted(set(refs) - set(gens))
    if missing:
        warn(
            f"{generated_dir}: {len(missing)} reference files have no generated file "
            f"({missing[0]}, ...)"
        )
    extra = sorted(set(gens) - set(refs))
    if extra:
        warn(f"{generated_dir}: {len(extra)} files have no reference ({extra[0]}, ...); skipped")
    return [(stem, refs[stem], gens[stem]) for stem in common]


def load_pair(
    reference: Path, generated: Path, *, max_mismatch: int = 256, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, np.ndarray]:
    """Both files as float32 at ``sample_rate``, trimmed to the shorter.

    Other rates are resampled and a rate mismatch between the two files is warned about; a
    length difference over ``max_mismatch`` samples (one mel hop; copy synthesis always
    differs by less) is warned about before trimming.
    """
    import soundfile as sf

    rates = []
    for path in (reference, generated):
        try:
            rates.append(sf.info(str(path)).samplerate)
        except Exception:
            rates.append(None)  # load_audio reports the problem
    ref, _ = load_audio(reference, sample_rate)
    gen, _ = load_audio(generated, sample_rate)
    if None not in rates and rates[0] != rates[1]:
        warn(f"{generated}: sample rate {rates[1]} Hz differs from the reference's {rates[0]} Hz")
    if abs(ref.shape[0] - gen.shape[0]) > max_mismatch:
        warn(
            f"{generated}: {gen.shape[0]} samples vs {ref.shape[0]} in the reference; "
            "trimmed to the shorter"
        )
    n = min(ref.shape[0], gen.shape[0])
    return ref[:n], gen[:n]
