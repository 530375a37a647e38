"""Sampling spread over worker processes, one thread each, each writing one shard of the rows.

A decoding step of a `small` model is a few small matmuls (M = 256 rows, K = 256) plus ~40 elementwise ops,
the attention kernel and the draw. Run on 2 OpenMP threads, every one of those ops wakes and joins the
second thread; run as two processes of one thread each, on half the rows each, nothing is shared, and the
Python of each step is split between them too: 1.14-1.24x the rows or tokens/s on 2 cores, guided or not
(docs/text-model.md).

Workers are forked where the platform forks safely (Linux): the model's weights are shared copy-on-write and
nothing is pickled but the prompts and the tokens. Elsewhere they are spawned. A worker dies with its parent
(a parent-death signal on Linux, and everywhere a thread that watches the parent's pid), and a forked one
first closes the network sockets it inherited: a database load's connection must end when the process
that opened it is killed, or the server keeps its transaction and locks open for the orphans.
Rows are dealt round-robin (shard w takes rows w, w + W, ...), and each shard gets its own seed drawn from the caller's generator:
the text depends on the seed and the number of workers, as it depends on the batch size.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_module
import signal
import socket
import stat
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from shopgen.errors import ShopgenError
from shopgen.text.generate.sampler import FieldSpec, SamplingConfig, concrete, generate_fields

MIN_SHARD_ROWS = 64  # fewer rows a worker do not pay for its start (forked: ~40 ms for a tiny model); redraws stay here
WATCH_SECONDS = 0.5  # how often a worker without a parent-death signal checks that its parent lives
POLL_SECONDS = 0.2  # how often the parent looks at its workers' progress while it waits for them
START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"  # macOS frameworks are not fork-safe


def plan(n_rows: int, workers: int | None) -> int:
    """Worker processes for `n_rows`, one thread each. By default one per thread torch may use
    (`torch.set_num_threads`, OMP_NUM_THREADS) as long as each gets MIN_SHARD_ROWS rows; an explicit count
    is taken as it is (never more than the rows)."""
    if workers is None:
        workers = min(torch.get_num_threads(), n_rows // MIN_SHARD_ROWS)
    return max(1, min(workers, n_rows))


def generate_sharded(
    model: torch.nn.Module,
    prompts: list[list[int]],
    fields: list[FieldSpec],
    *,
    cfg: SamplingConfig,
    generator: torch.Generator,
    on_batch: Callable[[int], None] | None = None,
    **sampler_args,
) -> list[list[list[int]]]:
    """`sampler.generate_fields` over `plan(len(prompts), cfg.workers)` workers; the same result shape.

    With one worker it runs here, on the caller's generator, exactly as `generate_fields` does. The precision
    must be decided already (not "auto"), so every worker multiplies in the same float type."""
    concrete(cfg.precision)
    workers = plan(len(prompts), cfg.workers)
    if workers == 1:
        return generate_fields(model, prompts, fields, cfg=cfg, generator=generator, on_batch=on_batch, **sampler_args)
    seeds = torch.randint(0, 2**62, (workers,), generator=generator).tolist()
    context = mp.get_context(START_METHOD)
    progress = context.Queue()
    out: list[list[list[int]]] = [[] for _ in prompts]
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                               initargs=(model, fields, cfg, sampler_args, os.getpid(), progress))
    try:
        futures = {pool.submit(_shard, prompts[w::workers], seeds[w]): w for w in range(workers)}
        pending, reported = set(futures), 0
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_EXCEPTION)
            reported += _report(progress, on_batch)
            for future in done:
                w = futures[future]
                out[w::workers] = future.result()  # re-raises a worker's exception here
        if on_batch and reported < len(prompts):  # counts still in the queue's pipe when the last shard returned
            on_batch(len(prompts) - reported)
    except BrokenProcessPool as exc:
        raise ShopgenError(f"a text sampling worker died ({exc}); if memory ran out, sample with fewer "
                           "workers (--text-workers 1) or a smaller batch") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
    return out


def _report(progress, on_batch: Callable[[int], None] | None) -> int:
    """Pass on the rows the workers finished since the last look; returns how many."""
    total = 0
    while True:
        try:
            n = progress.get_nowait()
        except queue_module.Empty:
            return total
        total += n
        if on_batch:
            on_batch(n)


_worker: dict = {}  # what `_start` gave this worker process


def _start(model, fields, cfg, sampler_args, parent: int, progress) -> None:
    """One thread: a forked child's OpenMP runtime still holds the parent's thread pool, whose threads it
    does not have, and its first parallel region of two threads hangs (seen with torch 2.13 here)."""
    _die_with(parent)
    _close_inherited_network_sockets()
    torch.set_num_threads(1)
    _worker.update(model=model, fields=fields, cfg=cfg, sampler_args=sampler_args, progress=progress)


def _shard(prompts: list[list[int]], seed: int) -> list[list[list[int]]]:
    w = _worker
    return generate_fields(w["model"], prompts, w["fields"], cfg=w["cfg"], generator=torch.Generator().manual_seed(seed),
                           on_batch=w["progress"].put, **w["sampler_args"])


def _die_with(parent: int) -> None:
    """End this worker when `parent` ends, even by kill -9, so no orphan keeps a CPU, memory or a socket."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="shopgen-parent-watch").start()


def _close_inherited_network_sockets() -> None:
    """Close the TCP sockets a forked worker inherited (a database connection among them); the parent's
    copies stay open. Local sockets are left alone: multiprocessing's own pipes may be among them."""
    fds = "/proc/self/fd"
    if not os.path.isdir(fds):
        return
    for name in os.listdir(fds):
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            probe = socket.socket(fileno=fd)
            family = probe.family
            probe.detach()
        except OSError:
            continue
        if family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                os.close(fd)
