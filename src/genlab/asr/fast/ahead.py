"""Encoding ahead on CPU: the next planned windows are encoded on a second thread while the current ones decode,
and the decoding thread lends its thread to the encoder while it waits. Speed machinery only: transcription
gives the same segments without it (``TranscribeOptions.encode_ahead=False``)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import torch
from torch.overrides import TorchFunctionMode

from ..windows import Window

if TYPE_CHECKING:
    from ..model import Whisper
    from ..transcribe import TranscribeOptions


def encodes_ahead(model: Whisper, opts: TranscribeOptions) -> bool:
    """Whether :class:`EncodeAhead` applies: fp32 or int8 on CPU (the token embedding stays fp32 in both), one
    window at a time, greedy or beam search. A decoding step barely slows on one thread while the encoder, bound by
    arithmetic, runs on the other (measured: ``benchmarks/results/asr_speed_epyc.json``, commits 40e7a76, bc2fde1).
    bf16 is not measured and keeps both threads for each part."""
    embedding = model.decoder.token_embedding.weight
    return embedding.device.type == "cpu" and embedding.dtype == torch.float32 and opts.batch_size == 1


class EncodeAhead:
    """Encodes the windows planned next on a second thread while the current ones decode.

    A decoding step reads every decoder weight for a token or five (beam 5): it is bound by memory, and a second
    thread speeds it up less than it speeds up the encoder, a few large products bound by arithmetic that share
    nothing with the decoding. So while a window decodes on one thread, the other threads encode the next window,
    and the decoding takes the threads back when the encoding is done (:meth:`poll`). Up to ``depth`` windows are
    queued ahead, encoded in plan order by the one second thread. The plan is a guess made before the current
    windows are decoded: if one of them leaves speech undecoded the plan changes and the guesses from there on are
    thrown away. While the decoding thread waits in :meth:`take` it lends the encoding its thread too
    (:class:`ThreadsOnDemand`). Used as a context manager: it leaves the caller's thread count as it found it."""

    def __init__(self, encode_windows: Callable, threads: int, depth: int = 1):
        self.encode_windows = encode_windows
        self.threads = threads  # the caller's; the second thread gets all but one
        self.depth = depth  # how many windows ahead (2 for greedy decoding, 1 for beam search)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genlab-encode")
        self.jobs: list[tuple[list[Window], Future]] = []  # (planned windows, their encoding), in plan order
        self.waiting = False  # the decoding thread is blocked on an encoding: the encoder may use every thread

    def __enter__(self) -> EncodeAhead:
        return self

    def __exit__(self, *exc) -> None:
        # A guess in flight finishes, the ones not begun are cancelled: nothing is left running after the call.
        self.pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(self.threads)

    def start(self, plan: list[list[Window]]) -> None:
        """Encode ahead the first ``depth`` batches of windows of ``plan`` (the ones planned next, in order):
        those already queued for the same plan are kept, the others queued behind them."""
        plan = plan[: self.depth]
        same = 0
        while same < min(len(plan), len(self.jobs)) and self.jobs[same][0] == plan[same]:
            same += 1
        self._drop(same)  # where the plan changed, the guesses from there on are thrown away
        for wins in plan[len(self.jobs) :]:
            self.jobs.append((wins, self.pool.submit(self._encode, wins, torch.is_grad_enabled())))
        if self.jobs:
            torch.set_num_threads(1)  # while the second thread encodes, one thread decodes

    def _encode(self, wins: list[Window], grad: bool):
        torch.get_num_threads()  # a new thread takes torch's global count on first use: take it before setting
        torch.set_num_threads(self.encoder_threads())
        with torch.set_grad_enabled(grad), ThreadsOnDemand(self):  # grad mode is per thread
            return self.encode_windows(wins)

    def encoder_threads(self) -> int:
        """The second thread's count: every thread while the caller waits for it in :meth:`take`, else all but one."""
        return self.threads if self.waiting else max(1, self.threads - 1)

    def _drop(self, keep: int = 0) -> None:
        """Throw the guesses after the first ``keep`` away: those not begun are cancelled, the one in flight is
        waited for (the file's mel is computed on demand, by one thread at a time), and any error they raised goes
        with them."""
        for _, job in self.jobs[keep:]:
            if not job.cancel():
                job.exception()
        self.jobs = self.jobs[:keep]
        if not self.jobs:
            torch.set_num_threads(self.threads)

    def poll(self) -> None:
        """Take the lent threads back once the encoding ahead is done (called between decoding steps: beam search
        and a window that falls back to sampling decode five rows a step, faster on two threads than on one)."""
        if self.jobs and all(job.done() for _, job in self.jobs) and torch.get_num_threads() < self.threads:
            torch.set_num_threads(self.threads)

    def _index(self, wins: list[Window]) -> int | None:
        return next((i for i, (guess, _) in enumerate(self.jobs) if guess == wins), None)

    def queued(self, wins: list[Window]) -> bool:
        """Whether ``wins`` were guessed (their encoding is queued, in flight or done)."""
        return self._index(wins) is not None

    def first(self, wins: list[Window]) -> None:
        """Encode ``wins`` (a retry, needed before the windows guessed next) ahead of the guesses not yet begun,
        which stay queued behind it; :meth:`take` takes it out alone."""
        waiting = [w for w, job in self.jobs if job.cancel()]  # not begun: queued again after the retry
        self.jobs = [(w, job) for w, job in self.jobs if not job.cancelled()]
        for w in [wins, *waiting]:
            self.jobs.append((w, self.pool.submit(self._encode, w, torch.is_grad_enabled())))
        torch.set_num_threads(1)  # while the second thread encodes, one thread decodes

    def take(self, wins: list[Window]):
        """What ``encode_windows`` gave for ``wins`` if they were encoded ahead (the guesses queued before them
        are thrown away), else None. A window not guessed (an utterance a packed window skipped, decoded again
        alone: Todo.put_back) leaves the guesses queued: the windows planned after it are still to come. An error
        encoding a guess is raised here if the guess is used; a guess thrown away takes its error with it (its
        windows, if still to come, are encoded again and raise then). The caller gets its threads back once nothing
        is left in flight."""
        i = self._index(wins)
        if i is None:
            self.poll()  # the caller encodes these itself: on every thread, unless a guess is being encoded
            return None
        if wins[0].retry:  # queued by first(): the guesses around it are still to come
            _, job = self.jobs.pop(i)
        else:
            for _, job in self.jobs[:i]:
                if not job.cancel():
                    job.exception()
            _, job = self.jobs[i]
            self.jobs = self.jobs[i + 1 :]
        self.waiting = True
        try:
            return job.result()
        finally:
            self.waiting = False
            if not self.jobs:
                torch.set_num_threads(self.threads)


class ThreadsOnDemand(TorchFunctionMode):
    """In the encoding thread: before each torch call, take every thread while the decoding thread waits for this
    encoding, and all but one otherwise. (A thread count is per thread: the decoding thread's stays as it is.) Once
    a greedy window decodes faster than the next one encodes on one thread, the decoder's idle thread speeds up the
    encoder instead of waiting."""

    def __init__(self, ahead: EncodeAhead):
        super().__init__()
        self.ahead = ahead
        self.current = torch.get_num_threads()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        want = self.ahead.encoder_threads()
        if want != self.current:
            torch.set_num_threads(want)
            self.current = want
        return func(*args, **(kwargs or {}))
