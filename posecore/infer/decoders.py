"""Several decoders at once, one shard each, handing batches of frames to one consumer.

`decode_shards` runs `decoders` threads; each takes the next shard from the list, decodes it
with its own ffmpeg process (`posecore.io.video.decode_into`: exact frames, every one checked
against the decoder's timestamps) straight into batch buffers of its own, and queues each
full batch. The consumer takes batches in the order they come, from whichever shard, so one
slow shard never stalls the model; a shard's own batches come in frame order, and its
`ShardEnd` after its last batch.

A decoder reuses its `BUFFERS_PER_DECODER` buffers: it fills one while the consumer holds the
others, and waits for one to be released (`Frames.release`), so memory stays at
decoders x buffers x batch, whatever the length of the video. For a GPU the buffers are in
pinned memory, so copies to the GPU run asynchronously; `release(after=event)` lets the
decoder wait for that copy before it writes the buffer again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posecore.infer.plan import Shard
from posecore.io.video import VideoInfo, decode_into

BUFFERS_PER_DECODER = 3
_POLL_S = 0.1  # how often a waiting thread checks whether the consumer has stopped


@dataclass(frozen=True)
class ShardSource:
    """A shard with the file and probe of its video."""

    shard: Shard
    path: Path
    info: VideoInfo


@dataclass(eq=False)
class Frames:
    """A batch of consecutive frames of one shard, in a decoder's buffer until released.

    Attributes:
        source: the shard.
        indices: int64 (B,) frame indices.
        times: float64 (B,) their times in seconds (`VideoInfo.time_of`).
        images: uint8 (B, H, W, 3) RGB, a view of the decoder's buffer: valid until `release`.
    """

    source: ShardSource
    indices: np.ndarray
    times: np.ndarray
    images: np.ndarray
    _slot: _Slot = field(repr=False)

    def release(self, after: Any = None) -> None:
        """Give the buffer back to its decoder, which may write it again once `after` (a CUDA event) is done."""
        self._slot.release(after)


@dataclass(frozen=True)
class ShardEnd:
    """The end of a shard: all its batches were handed out (`error` None), or decoding failed with `error`."""

    source: ShardSource
    error: BaseException | None = None


class _Slot:
    """One batch buffer of a decoder, and the event its last reader's copy must reach first."""

    def __init__(self, owner: queue.Queue) -> None:
        self._owner = owner
        self.array: np.ndarray | None = None
        self._after: Any = None

    def buffer(self, shape: tuple[int, ...], pin_memory: bool) -> np.ndarray:
        """The buffer, uint8 `shape`, reallocated when the shape changes (another frame size); ready to be written."""
        if self._after is not None:
            self._after.synchronize()  # the last copy out of this buffer has finished
            self._after = None
        if self.array is None or self.array.shape != shape:
            if pin_memory:
                import torch

                self.array = torch.empty(shape, dtype=torch.uint8, pin_memory=True).numpy()
            else:
                self.array = np.empty(shape, dtype=np.uint8)
        return self.array

    def release(self, after: Any = None) -> None:
        self._after = after
        self._owner.put(self)


def _put(target: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put `item` into `target`, waiting for room until `stop` is set; whether it went in."""
    while not stop.is_set():
        try:
            target.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(source: queue.Queue, stop: threading.Event) -> Any:
    """Take an item from `source`, waiting until `stop` is set; None once it is."""
    while not stop.is_set():
        try:
            return source.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    return None


class _Decoder:
    """One decoding thread: shards from `work` to batches in `out`, in its own buffers."""

    def __init__(
        self,
        work: queue.Queue,
        out: queue.Queue,
        stop: threading.Event,
        batch_size: int,
        pin_memory: bool,
        threads: int | None,
    ) -> None:
        self.work, self.out, self.stop = work, out, stop
        self.batch_size, self.pin_memory, self.threads = batch_size, pin_memory, threads
        self.free: queue.Queue = queue.Queue()
        for _ in range(BUFFERS_PER_DECODER):
            self.free.put(_Slot(self.free))
        self.thread = threading.Thread(target=self._run, name="posecore-decoder", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                source = self.work.get_nowait()
            except queue.Empty:
                return
            try:
                self._decode(source)
            except BaseException as error:  # handed to the consumer with its shard
                _put(self.out, ShardEnd(source, error), self.stop)
            else:
                _put(self.out, ShardEnd(source), self.stop)

    def _decode(self, source: ShardSource) -> None:
        shard, info = source.shard, source.info
        current: list[tuple[_Slot, np.ndarray]] = []  # [(slot, buffer)] of the batch being filled

        def into(k: int) -> memoryview:
            """Row k % B of the batch that holds frame shard.start + k; a fresh slot at each batch's first frame."""
            if k % self.batch_size == 0 and not current:
                slot = _get(self.free, self.stop)
                if slot is None:
                    raise _Stopped
                n = min(self.batch_size, shard.n_frames - k)  # a shard's last batch uses the buffer's first rows
                buffer = slot.buffer((self.batch_size, info.height, info.width, 3), self.pin_memory)
                current.append((slot, buffer[:n]))
            return memoryview(current[0][1][k % self.batch_size]).cast("B")

        frames = decode_into(source.path, info, shard.start, shard.stop, into, threads=self.threads)
        try:
            for k in frames:
                if (k + 1) % self.batch_size and k + 1 < shard.n_frames:
                    continue
                slot, images = current.pop()
                first = shard.start + k + 1 - len(images)
                indices = np.arange(first, first + len(images), dtype=np.int64)  # (B,)
                batch = Frames(source, indices, info.times_of(indices), images, slot)
                if not _put(self.out, batch, self.stop):
                    raise _Stopped
        finally:
            frames.close()  # ends ffmpeg when stopped early


class _Stopped(Exception):
    """The consumer stopped: a decoder leaves its shard."""


def decode_shards(
    sources: Sequence[ShardSource],
    *,
    batch_size: int,
    decoders: int,
    pin_memory: bool = False,
    threads_per_decoder: int | None = None,
) -> Iterator[Frames | ShardEnd]:
    """Decode `sources` with `decoders` decoders at once; yield their batches and ends as they come.

    Args:
        sources: the shards, taken by the decoders in this order.
        batch_size: frames per batch; a shard's last batch may be shorter.
        decoders: decoders (ffmpeg processes) at once, at least 1.
        pin_memory: batch buffers in pinned memory (for copies to a GPU).
        threads_per_decoder: ffmpeg's decoding threads per decoder (None: ffmpeg's own choice).

    Yields:
        `Frames` (release each once done with its images) and one `ShardEnd` per shard, after
        its last batch. Stopping early stops every decoder and its ffmpeg process.
    """
    if batch_size < 1 or decoders < 1:
        raise ValueError(f"batch_size and decoders must be at least 1, got {batch_size} and {decoders}")
    work: queue.Queue = queue.Queue()
    for source in sources:
        work.put(source)
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    pool = [
        _Decoder(work, out, stop, batch_size, pin_memory, threads_per_decoder)
        for _ in range(min(decoders, len(sources)))
    ]
    for decoder in pool:
        decoder.thread.start()
    remaining = len(sources)
    try:
        while remaining:
            item = out.get()
            if isinstance(item, ShardEnd):
                remaining -= 1
                if isinstance(item.error, _Stopped):
                    continue
            yield item
    finally:
        stop.set()
        for decoder in pool:
            decoder.thread.join(timeout=10)
