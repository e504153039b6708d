"""hifigan vocode INPUT... -o OUTDIR [--model NAME|PATH]: audio or mel files to 16-bit wavs.

Audio inputs (wav, flac, ogg, ...) are re-synthesized through their own mel (copy synthesis);
mel inputs (.npy/.pt, shape (n_mels, frames)) are vocoded directly. Without --model or
--checkpoint the built-in lj-v1 is used (pip install 'hifigan[pretrained]').

--backend and --precision choose how the generator runs (see docs/inference.md). --stream
synthesizes each file through the exact streaming path, --chunk-frames frames at a time, and
reports the latency and the compute time per chunk.

Mels made with another toolkit's convention: --mel-convention NAME|FILE.json converts them into
the model's convention first (--mel-stats FILE undoes a mean-variance normalisation), auto
detects it from the statistics of all the mels of a folder together (one line names any mel
that alone would read otherwise); a mel_convention.json beside the mels (written by hifigan
mel --convention) is used when the option is not given, or is auto. Otherwise each mel is
checked against the model's convention, with a warning naming the convention it looks like
(see docs/mel-conventions.md).

Standard input: the input - reads raw float32 little-endian mel frames (n_mels values per
frame, frame after frame) as they arrive and streams them; the audio goes to OUTDIR/stdin.wav,
or with -o - to standard output as raw 16-bit little-endian PCM, written as soon as it is final.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from torch import Tensor

from ..conventions import CONVENTION_FILE, Convention, MelStats, load_convention, load_stats
from ..conventions.detect import thinned
from ..errors import HiFiGANError, InputError
from ..inference import Vocoder
from ..inference.backends import AUTO
from ..inference.inputs import frame_size, raw_frames
from ..inference.vocoder import resolve_device
from ..io import (
    AUDIO_SUFFIXES,
    MEL_SUFFIXES,
    collect_inputs,
    load_audio,
    load_mel,
    save_wav,
    to_int16,
)
from ..outputs import OutputPlan
from ..pretrained import DEFAULT_MODEL
from .common import (
    add_model_arguments,
    add_overwrite_argument,
    add_threads_argument,
    apply_threads,
    claim_batch,
    model_source,
    output_plan,
    process_files,
)
from .options import add_device_backend_arguments, integer, launcher_ranks, report_backend

HELP = "turn audio (copy synthesis) or mel files into 16-bit wav files"
STDIN = "-"
STDIN_FILE = "stdin.wav"
SUFFIXES = AUDIO_SUFFIXES + MEL_SUFFIXES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files, mel files (.npy/.pt), folders, or - (raw float32 frames on stdin)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUTDIR",
        help="output folder (- with input -: raw 16-bit PCM on standard output)",
    )
    add_model_arguments(p, default_model=DEFAULT_MODEL)
    add_device_backend_arguments(p)
    p.add_argument(
        "--stream", action="store_true", help="synthesize through the exact streaming path"
    )
    p.add_argument(
        "--chunk-frames",
        type=integer(1, 65_536),
        default=32,
        help="mel frames per streamed chunk (default 32)",
    )
    p.add_argument(
        "--mel-convention",
        metavar="NAME|FILE|auto",
        help="the mels' convention when it is not the model's: a named one (hifigan mel-check "
        "lists them), a JSON file, or auto to detect it (per folder, from all its mels); "
        "converted before vocoding",
    )
    p.add_argument(
        "--mel-stats",
        type=Path,
        metavar="FILE",
        help="the statistics that normalised the mels (stats.h5, feats_stats.npz, .npy/.npz "
        "mean and scale), undone before vocoding",
    )
    p.add_argument(
        "--edge-padding",
        choices=["authors", "toolkit"],
        default="authors",
        help="toolkit: repeat the first and last mel frames as the model's toolkit does at "
        "inference (Coqui, SpeechBrain: 5 frames, giving 5 more frames of audio at each end), "
        "to reproduce its output exactly; authors (default): no padding (docs/toolkits.md)",
    )
    add_overwrite_argument(p)
    add_threads_argument(p)


class MelSource:
    """Which convention each mel file follows: ``--mel-convention NAME|FILE``; with ``auto``,
    a ``mel_convention.json`` beside the file, else the one decided for all the mels of its
    folder together (:meth:`Vocoder.detect_conventions`); without the option, a
    ``mel_convention.json`` beside the file, else the model's own (guarded)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.option: Convention | str | None = args.mel_convention
        if self.option is not None and self.option != AUTO:
            self.option = load_convention(self.option)
        self.stats: MelStats | None = None if args.mel_stats is None else load_stats(args.mel_stats)
        self._said: set[str] = set()
        self._detected: dict[Path, Convention | str] = {}

    def detect(self, vocoder: Vocoder, files: list[Path]) -> None:
        """With ``auto``: decide the convention of each folder's mels from all of them (those
        of a folder without a ``mel_convention.json``), and say which, and which mel on its
        own would have been read otherwise."""
        if self.option != AUTO:
            return
        folders: dict[Path, list[Path]] = {}
        for path in files:
            if path.suffix.lower() in MEL_SUFFIXES and not _declared(path).is_file():
                folders.setdefault(path.parent, []).append(path)
        for folder, paths in folders.items():
            mels, read = [], []
            for path in paths:
                try:
                    mels.append(thinned(load_mel(path)))
                except HiFiGANError:
                    continue  # reported when its turn comes
                read.append(path)
            if not read:
                continue
            found = vocoder.detect_conventions(mels, [str(p) for p in read])
            for path, convention, problem in zip(read, found.conventions, found.problems):
                self._detected[path] = convention if convention is not None else str(problem)
            names = [c.name for c in found.conventions if c is not None]
            for name in sorted(set(names), key=names.index):
                if len(read) == 1:
                    self._say(f"{read[0]}: detected mel convention {name}")
                else:
                    self._say(
                        f"{folder}: detected mel convention {name} ({names.count(name)} of "
                        f"{len(read)} mels, judged together)"
                    )
            for note in found.notes:
                self._say(note)

    def convention(self, vocoder: Vocoder, path: Path) -> Convention | None:
        """The convention of ``path``'s mel, or None for the model's own."""
        declared = _declared(path)
        found: Convention | str | None
        if self.option == AUTO and path in self._detected:
            found = self._detected[path]
            if isinstance(found, str):
                raise InputError(found, path)
        elif self.option is not None and self.option != AUTO:
            found = self.option
        elif declared.is_file():
            found = load_convention(declared)
            self._say(f"{declared}: mels read as convention {found.name}")
        else:
            return None
        if found == vocoder.convention and self.stats is None:
            return None
        self._say(f"converting mels from convention {found.name} to {vocoder.convention.name}")
        return found

    def _say(self, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            print(line, file=sys.stderr)


def _declared(path: Path) -> Path:
    """The convention file that may sit beside ``path``."""
    return path.parent / CONVENTION_FILE


class StreamStats:
    """Compute time per streamed chunk, reported on standard error.

    :meth:`chunks` and :meth:`pieces` wrap the input and output of :meth:`Vocoder.stream`: a
    chunk's time runs from handing it over until the stream asks for the next chunk or yields
    audio, so neither reading the input nor writing the output is counted.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started: float | None = None

    def _stop(self) -> None:
        if self._started is not None:
            self.seconds.append(time.perf_counter() - self._started)
            self._started = None

    def chunks(self, source: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for chunk in source:
            self._started = time.perf_counter()
            yield chunk
            self._stop()

    def pieces(self, audio: Iterable[Tensor]) -> Iterator[np.ndarray]:
        for piece in audio:
            self._stop()
            yield piece.cpu().numpy()

    def stream(self, vocoder: Vocoder, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """``vocoder.stream(chunks)`` as numpy arrays, timing each chunk."""
        return self.pieces(vocoder.stream(self.chunks(chunks)))

    def report(self, vocoder: Vocoder, name: str) -> None:
        if not self.seconds:
            return
        ms = [1000 * s for s in self.seconds]
        print(
            f"{name}: streamed {len(ms)} chunks; latency {vocoder.latency_frames} frames = "
            f"{1000 * vocoder.latency_seconds:.0f} ms; compute per chunk median "
            f"{statistics.median(ms):.1f} ms, max {max(ms):.1f} ms",
            file=sys.stderr,
        )


def read_stdin_frames(n_mels: int, chunk_frames: int) -> Iterator[np.ndarray]:
    """Raw float32 little-endian frames from standard input, ``(n_mels, c)`` as they arrive
    (at most ``chunk_frames`` per chunk; see :func:`raw_frames`)."""
    stream = sys.stdin.buffer
    frame_bytes = 4 * n_mels
    pending = b""
    while True:
        data = stream.read1(frame_bytes * chunk_frames - len(pending))
        if not data:
            break
        pending += data
        whole = len(pending) // frame_bytes * frame_bytes
        if whole:
            frames = raw_frames(pending[:whole], n_mels, "standard input")
            pending = pending[whole:]
            yield frames
    if pending:
        raise InputError(
            f"standard input ended inside a frame ({len(pending)} bytes left; "
            f"{frame_size(n_mels)})",
            "<stdin>",
        )


def vocode_stdin(vocoder: Vocoder, args: argparse.Namespace, plan: OutputPlan) -> int:
    stats = StreamStats()
    pieces = stats.stream(vocoder, read_stdin_frames(vocoder.n_mels, args.chunk_frames))
    try:
        if str(args.output) == "-":
            out = sys.stdout.buffer
            for audio in pieces:  # the vocoder refuses non-finite audio before it gets here
                out.write(to_int16(audio).astype("<i2").tobytes())
                out.flush()
        else:
            collected = list(pieces)
            if not collected:
                raise InputError("no mel frames on standard input", "<stdin>")
            path = plan.claim(args.output / STDIN_FILE)  # claimed before reading, checked again
            save_wav(path, np.concatenate(collected), vocoder.sample_rate)
            print(f"wrote {path}", file=sys.stderr)
    except InputError as e:
        if e.path is not None:
            raise
        raise InputError(str(e), "<stdin>") from None
    stats.report(vocoder, "<stdin>")
    return 0


def process_share(files: list[Path]) -> tuple[list[Path], int, int]:
    """This process's share of ``files`` when several run at once (``torchrun``, or any
    launcher that sets ``RANK`` and ``WORLD_SIZE``): ``(files, rank, world size)``.

    The split is deterministic, so that every process computes the same one without talking
    to the others: the distinct output names, sorted, go to the processes by index modulo the
    world size, and each input goes with its output name (inputs that would write the same
    file stay in one process, which reports the collision as a single process does).
    """
    rank, world, _ = launcher_ranks()
    if world == 1:
        return files, 0, 1
    names = sorted({p.stem for p in files})
    owner = {name: i % world for i, name in enumerate(names)}
    return [p for p in files if owner[p.stem] == rank], rank, world


def wait_for_other_processes(world: int) -> None:
    """Under ``torchrun``, hold this process's exit until every process is done: torchrun
    stops all the others as soon as one exits with an error, which would leave their files
    unwritten. Other launchers (no ``MASTER_ADDR``) run the processes independently."""
    if world < 2 or "MASTER_ADDR" not in os.environ:
        return
    import datetime

    import torch.distributed as dist

    # long enough for the slowest process's share of the files
    dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()


def synthesize_file(
    vocoder: Vocoder, mel: np.ndarray, args: argparse.Namespace, path: Path
) -> np.ndarray:
    """The audio of ``path``'s ``(n_mels, frames)`` mel, offline or through the stream; the
    vocoder raises :class:`InputError` for anything but finite audio."""
    if not args.stream:
        return vocoder(mel, check=False).cpu().numpy()
    stats = StreamStats()
    step = args.chunk_frames
    chunks = (mel[:, i : i + step] for i in range(0, mel.shape[1], step))
    wave = np.concatenate(list(stats.stream(vocoder, chunks)))
    stats.report(vocoder, str(path))
    return wave


def vocode_file(
    vocoder: Vocoder,
    path: Path,
    out: Path,
    args: argparse.Namespace,
    source: MelSource,
    plan: OutputPlan,
) -> None:
    """One input file (audio or mel, by its suffix in any case) to a 16-bit wav at ``out``."""
    suffix = path.suffix.lower()
    if suffix not in MEL_SUFFIXES + AUDIO_SUFFIXES:
        raise InputError(
            f"unsupported file type {suffix or '(none)'} (audio: {', '.join(AUDIO_SUFFIXES)}; "
            f"mel: {', '.join(MEL_SUFFIXES)})",
            path,
        )
    try:
        if suffix in MEL_SUFFIXES:
            mel = load_mel(path)
            convention = source.convention(vocoder, path)
            mel = vocoder.prepare_input(mel, convention, source.stats, label=str(path)).numpy()
        else:
            # the reader mixes channels before it refuses non-finite samples, which numpy
            # would report as a stray warning (inf - inf) ahead of the error
            with np.errstate(invalid="ignore", over="ignore"):
                audio, _ = load_audio(path, vocoder.sample_rate)
            mel = vocoder.mel(audio).cpu().numpy()
        wave = synthesize_file(vocoder, mel, args, path)
    except InputError as e:
        if e.path is not None:  # the readers name the file already
            raise
        raise InputError(str(e), path) from None
    save_wav(plan.claim(out, path), wave, vocoder.sample_rate)


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    if args.chunk_frames < 1:
        raise HiFiGANError(f"--chunk-frames must be at least 1, got {args.chunk_frames}")
    if STDIN in args.inputs and args.inputs != [STDIN]:
        raise HiFiGANError("standard input (-) cannot be combined with other inputs")
    if str(args.output) == "-" and args.inputs != [STDIN]:
        raise HiFiGANError("-o - (raw PCM on standard output) needs the input - (stdin)")
    if args.inputs == [STDIN] and launcher_ranks()[1] > 1:
        raise HiFiGANError("standard input (-) cannot be shared by several processes")
    if args.inputs == [STDIN] and (args.mel_convention or args.mel_stats):
        raise HiFiGANError(
            "--mel-convention and --mel-stats need whole mel files, not standard input "
            "(convert first: hifigan vocode FILE.npy --mel-convention ...)"
        )
    if args.mel_stats is not None and args.mel_convention is None:
        raise HiFiGANError("--mel-stats needs --mel-convention (the convention they normalise)")
    source = MelSource(args)
    files = [] if args.inputs == [STDIN] else collect_inputs(args.inputs, SUFFIXES)
    mine, rank, world = process_share(files)
    checkpoint, config = model_source(args)
    plan = output_plan(args, [*files, checkpoint, args.mel_stats, args.mel_convention])
    if args.inputs == [STDIN] and str(args.output) != "-":
        plan.claim_folder(args.output)
        plan.claim(args.output / STDIN_FILE)
    elif args.inputs != [STDIN]:
        claim_batch(plan, mine, args.output, ".wav")  # before the model loads
    vocoder = Vocoder.from_checkpoint(
        checkpoint,
        config=config,
        device=process_device(args.device, world),
        backend=args.backend,
        precision=args.precision,
        edge_padding=args.edge_padding,
    )
    report_backend(args)
    if args.inputs == [STDIN]:
        return vocode_stdin(vocoder, args, plan)
    source.detect(vocoder, files)  # every process decides alike, from all the files
    if world > 1:
        print(f"process {rank} of {world}: {len(mine)} of {len(files)} inputs", file=sys.stderr)
    status = process_files(
        mine,
        args.output,
        ".wav",
        lambda p, o: vocode_file(vocoder, p, o, args, source, plan),
        "vocode",
        plan,
    )
    wait_for_other_processes(world)
    return status


def process_device(device: str, world: int) -> str:
    """``cuda`` (or ``auto`` on a machine with CUDA) means GPU ``LOCAL_RANK`` when several
    processes share a machine."""
    if device == AUTO:
        device = resolve_device(device).type
    if world > 1 and device == "cuda":
        return f"cuda:{launcher_ranks()[2]}"
    return device
