"""hifigan listen: a browser listening test (MOS or A/B preference) and its results.

Serve a test; raters open the printed address in a browser:

    hifigan listen --ref refs/ --system v1=out_v1/ --system v2=out_v2/ --db ratings.sqlite

Files are paired by stem across the folders (wav, flac, ogg, ...), and the reference joins as the
system "ground truth". MOS mode (the default) asks for the paper's 5-point naturalness score
of one clip at a time; --mode ab plays two systems on the same utterance and asks which
sounds more natural. Ratings are saved in the SQLite file as they arrive; a rater who comes
back continues where they stopped. The results page needs the token printed at start-up.

Summarise the ratings (MOS with 95% t intervals, A/B shares with Wilson intervals):

    hifigan listen --results --db ratings.sqlite -o results/

Needs pip install 'hifigan[serve]'. See docs/listening-test.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..errors import HiFiGANError
from ..extras import require
from ..io import warn
from .common import add_overwrite_argument, output_plan
from .options import integer, port
from .serve import add_web_arguments

HELP = "a browser listening test (MOS or A/B) with ratings in SQLite, and its results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, type=Path, help="the ratings database (SQLite file)")
    p.add_argument(
        "--mode",
        choices=("mos", "ab"),
        default=None,
        help="mos: rate each clip 1-5 (default); ab: choose the better of two systems",
    )
    test = p.add_argument_group("run a test")
    test.add_argument("--ref", type=Path, metavar="DIR", help="the ground-truth recordings")
    test.add_argument(
        "--system",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a system's audio, files named like the references (repeatable)",
    )
    test.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default: %(default)s)"
    )
    test.add_argument(
        "--port", type=port(any_port=True), default=8001, help="port (default: %(default)s; 0: any)"
    )
    test.add_argument(
        "--per-rater",
        type=integer(1),
        default=None,
        metavar="N",
        help="trials per rater (default: all utterance x system, or x pair, combinations)",
    )
    add_web_arguments(test)
    test.add_argument("--title", default="Listening test", help="the pages' title")
    test.add_argument(
        "--no-normalize",
        action="store_true",
        help="play clips at their own level (default: all scaled to one RMS level)",
    )
    res = p.add_argument_group("summarise ratings")
    res.add_argument("--results", action="store_true", help="print and write the results")
    res.add_argument(
        "-o", "--output", type=Path, metavar="DIR", help="where results go (default: beside --db)"
    )
    res.add_argument("--no-plot", action="store_true", help="write no plot")
    add_overwrite_argument(res)


def run(args: argparse.Namespace) -> int:
    if args.results:
        return _results(args)
    require("serve", "starlette", "uvicorn", purpose="the listening test")
    return _serve(args)


def _results(args: argparse.Namespace) -> int:
    from ..listen.results import (
        ab_cells,
        ab_results,
        markdown_table,
        mos_cells,
        mos_results,
        write_results,
    )
    from ..listen.store import Store

    store = Store(args.db, read_only=True)
    try:
        order = store.systems()
        modes = [args.mode] if args.mode else ["mos", "ab"]
        mos = mos_results(store.ratings("mos"), order) if "mos" in modes else []
        ab = ab_results(store.ratings("ab"), order) if "ab" in modes else []
        tests = [mode for mode, ratings in store.tests().values() if ratings]
    finally:
        store.close()
    for mode in modes:
        if tests.count(mode) > 1:
            kind = "MOS" if mode == "mos" else "A/B"
            warn(
                f"{args.db}: {tests.count(mode)} {kind} tests; their ratings are pooled per system"
            )
    if not mos and not ab:
        which = f"{args.mode.upper()} " if args.mode else ""
        raise HiFiGANError(f"no {which}ratings yet", args.db)
    if mos:
        print(markdown_table(mos_cells(mos)))
    if ab:
        print(("\n" if mos else "") + markdown_table(ab_cells(ab)))
    out_dir = args.output if args.output is not None else args.db.resolve().parent
    plan = output_plan(args, [args.db])
    for path in write_results(mos, ab, out_dir, plots=not args.no_plot, outputs=plan):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..listen.design import plan_size
    from ..listen.server import MAX_BODY_BYTES, ListeningTest, bind, make_server
    from ..listen.stimuli import check_readable, collect_stimuli, parse_systems
    from ..listen.store import Store
    from ..serve.guard import WebPolicy

    if args.ref is None:
        raise HiFiGANError("give --ref DIR and --system NAME=DIR (or --results to summarise)")
    mode = args.mode or "mos"
    stimuli = collect_stimuli(args.ref, parse_systems(args.system))
    stimuli.normalize = not args.no_normalize
    check_readable(stimuli)
    total = plan_size(mode, len(stimuli.utterances), len(stimuli.systems))
    per_rater = args.per_rater
    if per_rater is not None and per_rater < 1:
        raise HiFiGANError(f"--per-rater must be at least 1, got {per_rater}")
    if per_rater is not None and per_rater > total:
        warn(f"--per-rater {per_rater} is more than the {total} distinct trials; using {total}")
        per_rater = total
    policy = WebPolicy(args.host, args.allow_hosts, args.allow_origins, MAX_BODY_BYTES)
    store = Store(args.db)
    try:
        test = ListeningTest(stimuli, store, mode=mode, per_rater=per_rater, title=args.title)
        sock = bind(args.host, args.port)
        _announce(test, args, sock.getsockname()[1], per_rater or total, policy)
        # uvicorn re-raises the Ctrl-C it shut down on: the normal way to stop
        with contextlib.suppress(KeyboardInterrupt):
            make_server(test, policy).run(sockets=[sock])
        print(f"stopped; {len(test.ratings())} {test.kind} ratings of this test in {args.db}")
    finally:
        store.close()
    return 0


def _announce(test, args: argparse.Namespace, port: int, per_rater: int, policy) -> None:
    """Print what is served where, with the results page's token."""
    import socket

    host = socket.gethostname() if args.host in ("0.0.0.0", "::") else args.host
    host = f"[{host}]" if ":" in host else host
    s = test.stimuli
    print(
        f"{test.kind} test: {len(s.systems)} systems ({', '.join(s.systems)}) x "
        f"{len(s.utterances)} utterances, {per_rater} trials per rater"
    )
    others = test.others()
    held = f"; the database also holds {others}" if others else ""
    print(f"ratings: {args.db} ({len(test.ratings())} so far in this test{held})")
    print(f"raters:  http://{host}:{port}/")
    print(f"results: http://{host}:{port}/results?token={test.token}")
    print("stop with Ctrl-C; every rating is saved as it arrives", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"serving on {args.host}: anyone who can reach this port can take the test")
    if policy.describe():
        print(f"note: {policy.describe()}", file=sys.stderr, flush=True)
