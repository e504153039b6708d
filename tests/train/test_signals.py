"""Training under the signals schedulers, terminals and process managers send, and one owner
per run folder.

Every run is a real ``hifigan train`` subprocess in its own session (so that a signal to its
process group reaches its loader workers too, as from ``timeout``, SLURM or a terminal) on a
tiny synthetic dataset with a small ``debug`` config. The runs of a matrix start together and
are signalled once each has logged step 2.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from hifigan import HiFiGANConfig
from hifigan.checkpoint import read_checkpoint
from hifigan.train import TrainOptions, train
from hifigan.train.loop import Interrupted, StopSignal
from hifigan.train.manifest import prepare
from hifigan.train.run_folder import LOCK, RunFolderBusy, RunFolderLock

from conftest import REPO

RATE = 22050
QUIET = ["--no-progress", "--no-tensorboard", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Eight 0.6 s clips (tones in noise) prepared for training, one of them for validation."""
    folder = tmp_path_factory.mktemp("signals")
    rng = np.random.default_rng(0)
    t = np.arange(int(0.6 * RATE)) / RATE
    for i in range(8):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"c{i}.wav", tone.astype(np.float32), RATE, subtype="PCM_16")
    prepare(folder, folder / "prepared", sample_rate=RATE, val_size=1)
    return folder / "prepared"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """The debug preset with 2048-sample segments, batch 2, a log line every step, and no
    validation or checkpoint in the run's first 100000 steps."""
    cfg = HiFiGANConfig.preset("debug").to_dict()
    cfg["train"].update(
        segment_size=2048,
        batch_size=2,
        log_interval=1,
        val_interval=100000,
        checkpoint_interval=100000,
        max_steps=100000,
    )
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(cfg))
    return path


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def default_stop_signals() -> None:
    """Run in a child before ``exec``: the stop signals at their defaults, as a scheduler or a
    terminal starts a job, whatever the shell that started pytest ignored (a background job
    inherits SIGINT ignored, and an ignored signal stays ignored by design)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def stop_signals_not_ignored():
    """The in-process tests see SIGINT as Python sets it up, SIGTERM and SIGHUP at their
    defaults, even when pytest runs as a background job."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig, handler in previous.items():
        if handler is signal.SIG_IGN:
            signal.signal(
                sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            )
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


class Trainer:
    """A ``hifigan train`` subprocess in a session of its own, its standard error collected
    by a thread; ``started`` is set once it has logged step ``ready_step``."""

    def __init__(self, cmd: list[str], ready_step: int = 2) -> None:
        self.proc = subprocess.Popen(
            cmd,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            start_new_session=True,
            preexec_fn=default_stop_signals,
        )
        self.lines: list[str] = []
        self.started = threading.Event()
        self.ready = re.compile(rf"^step ({ready_step}|[1-9]\d+)/")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @classmethod
    def train(cls, run, dataset, config, workers: int, ready_step: int = 2) -> "Trainer":
        cmd = [sys.executable, "-m", "hifigan", "train", "--config", str(config)]
        cmd += ["--data", str(dataset), "--out", str(run), "--num-workers", str(workers)]
        return cls(cmd + QUIET, ready_step)

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if self.ready.match(line) or "stopped by" in line:
                self.started.set()
        self.started.set()  # it ended (and says why)

    def wait_started(self, timeout: float = 240) -> None:
        assert self.started.wait(timeout), self.err
        assert self.proc.poll() is None, self.err

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self.reader.join(10)
        return code, self.err

    @property
    def err(self) -> str:
        return "".join(self.lines)


def send(trainer: Trainer, sig: int, target: str) -> None:
    """``sig`` to the process, to its group (its loader workers too), or to both at once as
    ``timeout`` and SLURM send it."""
    pid = trainer.proc.pid
    if target in ("process", "both"):
        os.kill(pid, sig)
    if target in ("group", "both"):
        os.killpg(pid, sig)


def group_gone(pgid: int, within: float = 10) -> bool:
    """Whether no process of the group is left (the loader workers ended with the run)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def resume(run, config, steps: int, capsys) -> int:
    """``--resume`` the run (in this process) for ``steps`` more steps; the step it resumed
    from, as it says."""
    opts = TrainOptions(
        out=run, config=str(config), resume=True, progress=False, tensorboard=False, device="cpu"
    )
    start = read_checkpoint(sorted((run / "checkpoints").glob("step_*.pt"))[-1])["state"]
    opts.max_steps = start["step"] + steps
    result = train(opts)
    said = re.search(r"resuming from \S+ \(step (\d+),", capsys.readouterr().err)
    assert said, "no resume line"
    assert result.state.step == start["step"] + steps
    return int(said.group(1))


SIGNALS = [
    ("SIGTERM", "process"),
    ("SIGTERM", "both"),  # timeout, SLURM, docker stop: to the process and to its group
    ("SIGINT", "group"),  # Ctrl-C
    ("SIGHUP", "group"),  # a closed terminal or ssh connection
]


def run_matrix(tmp_path, dataset, config, capsys, workers: list[int]) -> list[dict]:
    """Start one run per (signal, workers) cell, signal each once it has logged step 2, check
    how each ended, then resume each. Returns the table of results."""
    cells = [(name, target, w) for w in workers for name, target in SIGNALS]
    runs = {cell: tmp_path / f"{cell[0]}-{cell[1]}-{cell[2]}" for cell in cells}
    trainers = {cell: Trainer.train(runs[cell], dataset, config, cell[2]) for cell in cells}
    waiting, deadline = dict(trainers), time.monotonic() + 300
    while waiting and time.monotonic() < deadline:  # each is signalled as soon as it is ready
        for cell, trainer in list(waiting.items()):
            if trainer.started.is_set():
                assert trainer.proc.poll() is None, trainer.err
                send(trainer, signal.Signals[cell[0]], cell[1])
                del waiting[cell]
        time.sleep(0.05)
    assert not waiting, {cell: t.err for cell, t in waiting.items()}
    table = []
    for (name, target, w), trainer in trainers.items():
        run, signum = runs[(name, target, w)], signal.Signals[name]
        code, err = trainer.finish()
        where = f"{name} to the {target}, {w} workers:\n{err}"
        assert code == 128 + signum, where
        assert "Traceback" not in err and "killed by signal" not in err, where
        last = err.strip().splitlines()[-1]
        said = re.fullmatch(
            rf"stopped by {name} at step (\d+): saved (\S+); continue with: hifigan train "
            rf"--out {re.escape(str(run))} --resume",
            last,
        )
        assert said, where
        step = int(said.group(1))
        assert step >= 2, where
        saved = run / "checkpoints" / f"step_{step:08d}.pt"
        assert said.group(2) == str(saved), where
        assert read_checkpoint(saved)["state"]["step"] == step
        assert not (run / LOCK).exists()
        assert group_gone(trainer.proc.pid), f"loader workers left behind: {where}"
        table.append(dict(signal=name, to=target, workers=w, step=step, code=code))
    for row in table:
        run = runs[(row["signal"], row["to"], row["workers"])]
        row["resumed"] = resume(run, config, 1, capsys)
        assert row["resumed"] == row["step"], row
    print("\nsignal   to       workers  step  exit  resumed at")
    for r in table:
        cells = (r["signal"], r["to"], r["workers"], r["step"], r["code"], r["resumed"])
        print("{:8} {:8} {:7} {:5} {:5} {}".format(*cells))
    return table


def test_every_stop_signal_saves_the_step_reached_and_the_run_resumes_there(
    tmp_path, dataset, config, capsys
):
    # two loader workers: the case that a group signal used to crash (the cells with 0, 1 and
    # 4 workers are the slow test below; without workers the other tests here cover it)
    run_matrix(tmp_path, dataset, config, capsys, workers=[2])


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[0], [1, 4]])
def test_the_same_with_other_numbers_of_loader_workers(tmp_path, dataset, config, capsys, workers):
    run_matrix(tmp_path, dataset, config, capsys, workers=workers)


@pytest.mark.slow
def test_timeout_ends_the_run_with_a_checkpoint(tmp_path, dataset, config):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "hifigan", "train", "--config", str(config)]
    cmd += ["--data", str(dataset), "--out", str(run), "--num-workers", "2", *QUIET]
    done = subprocess.run(
        ["timeout", "--preserve-status", "-s", "TERM", "30", *cmd],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        preexec_fn=default_stop_signals,
    )
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "Traceback" not in done.stderr
    said = re.search(r"stopped by SIGTERM at step (\d+): saved (\S+);", done.stderr)
    assert said, done.stderr
    assert read_checkpoint(said.group(2))["state"]["step"] == int(said.group(1))


@pytest.mark.slow
def test_a_closed_terminal_ends_the_run_with_a_checkpoint(tmp_path, dataset, config):
    """The run's terminal (a pseudo-terminal here) goes away: the kernel hangs it up and
    sends SIGHUP to its foreground group; writing the last lines must not fail."""
    import fcntl
    import termios

    run = tmp_path / "run"
    master, slave = os.openpty()
    cmd = [sys.executable, "-m", "hifigan", "train", "--config", str(config)]
    cmd += ["--data", str(dataset), "--out", str(run), "--num-workers", "2", *QUIET]

    def controlling_terminal() -> None:
        default_stop_signals()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=REPO,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 240
    while b"step 2/" not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(master, 4096)
        except OSError:
            break
    os.close(master)  # the terminal is gone
    assert proc.wait(120) == 128 + signal.SIGHUP, seen.decode(errors="replace")
    (saved,) = (run / "checkpoints").glob("step_*.pt")
    assert read_checkpoint(saved)["state"]["step"] >= 2


@pytest.mark.slow
def test_under_torchrun_every_rank_stops_at_the_same_step(tmp_path, dataset, config):
    """SIGTERM to the group of ``torchrun`` (its agent, both ranks, their loader workers): the
    ranks agree on the step, rank 0 saves it and says so once."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    cmd += ["2", "-m", "hifigan", "train", "--config", str(config), "--data", str(dataset)]
    cmd += ["--out", str(run), "--num-workers", "1", *QUIET]
    trainer = Trainer(cmd)
    trainer.wait_started()
    send(trainer, signal.SIGTERM, "group")
    _, err = trainer.finish(180)
    said = re.findall(r"stopped by SIGTERM at step (\d+): saved (\S+);", err)
    assert len(said) == 1, err
    step, saved = int(said[0][0]), said[0][1]
    assert read_checkpoint(saved)["state"]["step"] == step >= 2
    assert "killed by signal" not in err and "interrupted" not in err, err
    assert not (run / LOCK).exists()


# ---------------------------------------------------------------------- the policy itself
def test_a_repeated_signal_counts_once_and_a_later_one_interrupts_at_once():
    with StopSignal(repeat_seconds=0.5) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # the copy sent to the group: the same request
        time.sleep(0.05)
        assert stop.received == signal.SIGTERM and stop.name == "SIGTERM"
        time.sleep(0.6)
        with pytest.raises(Interrupted) as e:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        assert e.value.signum == signal.SIGINT
    # the handlers are restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_signal_ends_the_command_at_once_without_a_checkpoint(
    tmp_path, dataset, config, run_cli, monkeypatch
):
    from hifigan.train.validation import Validator

    validate = Validator.__call__

    def validate_and_press_ctrl_c_twice(self, state, *args):
        if state.step == 2:  # the first asks for a stop after this step, the second insists
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.2)
            os.kill(os.getpid(), signal.SIGINT)
        validate(self, state, *args)

    monkeypatch.setattr(Validator, "__call__", validate_and_press_ctrl_c_twice)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", config, "--data", dataset, "--out", run,
                           "--val-interval", "2", "--checkpoint-interval", "1", *QUIET)  # fmt: skip
    newest = run / "checkpoints" / "step_00000001.pt"
    assert (code, err.splitlines()[-1]) == (
        130,
        f"interrupted by a second signal (SIGINT) at step 2, not saved; the newest checkpoint "
        f"is {newest}",
    )
    assert [p.name for p in (run / "checkpoints").glob("step_*.pt")] == [newest.name]
    assert not (run / LOCK).exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_while_the_run_opens_stops_it_at_step_0_with_a_checkpoint(
    tmp_path, dataset, config, run_cli, monkeypatch
):
    import hifigan.train.loop as loop

    start_networks = loop.start_networks

    def start_networks_then_sigterm(*args, **kwargs):
        started = start_networks(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return started

    monkeypatch.setattr(loop, "start_networks", start_networks_then_sigterm)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", config, "--data", dataset, "--out", run, *QUIET)
    saved = run / "checkpoints" / "step_00000000.pt"
    assert (code, err.splitlines()[-1]) == (
        143,
        f"stopped by SIGTERM at step 0: saved {saved}; continue with: hifigan train --out {run} "
        "--resume",
    )
    assert "val_mel_l1" not in err  # it did not go on to the first validation
    monkeypatch.undo()
    code, _, err = run_cli("train", "--out", run, "--resume", "--max-steps", "1", *QUIET)
    assert code == 0 and f"resuming from {saved} (step 0, epoch 0)" in err, err


def test_under_torchrun_the_signal_passed_on_by_the_agent_counts_once():
    with StopSignal(repeat_seconds=0.1, launched=True) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)  # the agent's copy, late
        time.sleep(0.05)
        assert stop.received == signal.SIGTERM
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)  # another signal still interrupts
            time.sleep(0.05)


def test_a_signal_ignored_at_start_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with StopSignal() as stop:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
            assert stop.received is None
    finally:
        signal.signal(signal.SIGHUP, previous)


# ---------------------------------------------------------------------- one owner per folder
def test_the_lock_names_its_holder_and_goes_with_it(tmp_path):
    run = tmp_path / "new" / "run"
    lock = RunFolderLock.acquire(run)
    assert (run / LOCK).read_text().split()[0] == str(os.getpid())
    # flock locks belong to open files: a second open is refused, even in the same process
    with pytest.raises(RunFolderBusy) as e:
        RunFolderLock.acquire(run)
    assert str(e.value) == (
        f"{run}: in use by another training run (PID {os.getpid()}); wait for it to end, "
        "stop it, or choose another --out"
    )
    lock.release()
    assert not run.exists()  # it created the folder, which stayed empty
    # what a killed owner leaves: the file with its PID, unlocked; the next owner takes it
    run.mkdir(parents=True)
    (run / LOCK).write_text("999999999 elsewhere\n")
    lock = RunFolderLock.acquire(run)
    assert (run / LOCK).read_text().split()[0] == str(os.getpid())
    lock.release()
    assert run.is_dir() and not (run / LOCK).exists()


@pytest.mark.slow
def test_a_second_trainer_is_refused_and_a_killed_one_leaves_the_folder_free(
    tmp_path, dataset, config, run_cli
):
    run = tmp_path / "run"
    first = Trainer.train(run, dataset, config, workers=2, ready_step=1)
    try:
        first.wait_started()
        files = sorted(p.relative_to(run) for p in run.rglob("*"))
        settings = (run / "config.json").read_bytes()
        busy = (
            f"error: {run}: in use by another training run (PID {first.proc.pid}); wait for it "
            "to end, stop it, or choose another --out\n"
        )
        # a --resume of the running run, and a new run on the same --out
        for extra in (["--resume"], ["--data", str(dataset), "--batch-size", "4"]):
            code, _, err = run_cli("train", "--out", run, "--config", config, *extra, *QUIET)
            assert (code, err) == (1, busy)
        assert sorted(p.relative_to(run) for p in run.rglob("*")) == files
        assert (run / "config.json").read_bytes() == settings
        # kill -9 of the main process alone: its loader workers outlive it for a moment, but
        # the lock died with it
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(30)
        opts = TrainOptions(
            out=run, resume=True, max_steps=1, progress=False, tensorboard=False, device="cpu"
        )
        assert train(opts).state.step == 1
        assert not (run / LOCK).exists()
    finally:
        if first.proc.poll() is None:
            os.killpg(first.proc.pid, signal.SIGKILL)
        group_gone(first.proc.pid)


def test_train_refuses_a_folder_owned_by_another_run_before_writing(tmp_path, dataset):
    run = tmp_path / "run"
    lock = RunFolderLock.acquire(run)
    try:
        with pytest.raises(RunFolderBusy, match="in use by another training run"):
            train(TrainOptions(out=run, data=dataset, device="cpu", progress=False))
        assert [p.name for p in run.iterdir()] == [LOCK]
    finally:
        lock.release()
