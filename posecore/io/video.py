"""Exact video probing and frame reading through ffmpeg-python (docs/design.md, "Video reading").

The contract: reading frames [start, stop) gives, byte for byte, the frames that a full
sequential decode gives at those indices. A frame's index is its position in the decoder's
output (presentation) order; its time is kept beside it.

How it is kept, and kept fast for a range deep into a long video:

- `probe` builds a frame index from the packet table (no decoding): packets sorted by
  presentation timestamp are the frames in output order; key-flagged packets are the keyframes.
- A read seeks the input (`-ss` with `-seek_timestamp 1 -noaccurate_seek -copyts`) to a keyframe
  at or before `start`, and a `select` filter on the original timestamps keeps exactly the wanted
  frames. A `showinfo` filter before it logs every decoded frame's timestamp, after any decode
  error that came first, and each frame is checked against that log before it is handed out:
  its timestamp must be the wanted frame's, and no decode error may have come before it.
- A seek that fails the check falls back, for the frames not yet handed out, to a keyframe at
  least `_MARGIN` frames further back (where errors while the decoder starts up, such as an open
  GOP's leading pictures, are harmless), and last to a decode from the first frame, which is by
  definition right.
- Some decoding depends on state that only the start of the stream carries. Old x264 builds
  (before 151) wrote 4:4:4 streams that FFmpeg decodes with a workaround it switches on from the
  version string in the first packet; a seek skips that packet and every frame after it comes
  out wrong (with decode errors). `probe` records the version (`VideoInfo.x264_build`) and reads
  pass it to the decoder (`-x264_build`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import ffmpeg
import numpy as np

from posecore.errors import InputError
from posecore.io import ffmpeg_tools
from posecore.io.atomic import atomic_path
from posecore.io.ffmpeg_tools import PacketTable, ffmpeg_executable, ffprobe_executable

__all__ = [
    "FrameBatch",
    "VideoError",
    "VideoInfo",
    "decode_into",
    "ffmpeg_executable",
    "ffprobe_executable",
    "probe",
    "probe_to_json",
    "read_frame_array",
    "read_frames",
]

logger = logging.getLogger(__name__)

_MARGIN = 32  # frames; more than the deepest B-frame reordering (16) plus frame-thread delay (16)
_Tier = Literal["keyframe", "margin", "sequential"]


class VideoError(InputError):
    """A video that is missing, unreadable, truncated or corrupt; names the file and the frame."""


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about a video, exact and without decoding it.

    Attributes:
        path: the file.
        n_frames: frames that a full sequential decode gives (counted from packets).
        fps: frame rate; for a constant-frame-rate video, frame i is at i / fps seconds.
        width: frame width in pixels (x, columns).
        height: frame height in pixels (y, rows).
        codec: the codec's short name ("h264", "hevc", ...).
        pix_fmt: the decoded pixel format ("yuv420p", "yuv444p", ...); frames are read as RGB.
        duration_s: seconds from the first frame's start to the last frame's end.
        variable_frame_rate: whether the frame durations vary (by more than timestamp rounding).
        keyframes: indices (presentation order) of the keyframes, ascending.
        timestamps: per-frame time in seconds from the first frame, for a variable-frame-rate
            video; None for a constant one (time = index / fps).
        start_time_s: the first frame's presentation time in the container, in seconds.
        stream_index: the video stream's index in the file.
        x264_build: the x264 version that encoded the stream, when it says so; seeking reads pass
            it to the decoder, which emulates old x264 bugs only when it knows the version.
    """

    path: str
    n_frames: int
    fps: float
    width: int
    height: int
    codec: str
    pix_fmt: str
    duration_s: float
    variable_frame_rate: bool
    keyframes: tuple[int, ...]
    timestamps: tuple[float, ...] | None
    start_time_s: float = 0.0
    stream_index: int = 0
    x264_build: int | None = None

    @cached_property
    def _timestamp_array(self) -> np.ndarray:
        """float64 (N,) `timestamps` as an array, built once (VFR videos can have millions of frames)."""
        return np.asarray(self.timestamps, dtype=np.float64).reshape(-1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for results/videos/{video}.json).

        Returns:
            Every field, tuples as lists.
        """
        d = asdict(self)
        d["keyframes"] = list(self.keyframes)
        d["timestamps"] = None if self.timestamps is None else list(self.timestamps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoInfo:
        """The inverse of `to_dict`.

        Args:
            d: a dict as `to_dict` makes it (e.g. read back from JSON).

        Returns:
            The VideoInfo.

        Raises:
            ValueError: on an unknown or a missing key.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown VideoInfo keys {unknown}")
        kwargs = dict(d)
        kwargs["keyframes"] = tuple(int(k) for k in d.get("keyframes", ()))
        if d.get("timestamps") is not None:
            kwargs["timestamps"] = tuple(float(t) for t in d["timestamps"])
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ValueError(f"incomplete VideoInfo: {e}") from None

    def write_json(self, path: str | Path) -> None:
        """Write the probe as JSON (results/videos/{video}.json), atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def read_json(cls, path: str | Path) -> VideoInfo:
        """Read a probe written by `write_json` or `probe_to_json`.

        Raises:
            VideoError: the probe records that its video could not be probed (its error, as it was).
            InputError: a damaged file, named in the error.
        """
        try:
            content = json.loads(Path(path).read_text())
            if isinstance(content, dict) and "error" in content:
                raise VideoError(content["path"], content["error"], where=content.get("where"))
            return cls.from_dict(content)
        except (OSError, KeyError, TypeError) as error:
            raise InputError(path, f"not a readable video probe ({error})") from error
        except ValueError as error:
            if isinstance(error, VideoError):
                raise
            raise InputError(path, f"not a readable video probe ({error})") from error

    def times_of(self, indices: np.ndarray) -> np.ndarray:
        """float64 (N,) times in seconds from the first frame of frame indices (N,) inside [0, n_frames)."""
        return _times(self, np.asarray(indices, dtype=np.int64))

    def time_of(self, index: int) -> float:
        """The time of a frame, in seconds from the first frame.

        Args:
            index: the frame's index, 0 <= index < n_frames.

        Returns:
            index / fps for a constant-frame-rate video, its real timestamp for a variable one.
        """
        i = operator.index(index)
        if not 0 <= i < self.n_frames:
            raise ValueError(f"{self.path}: frame {i} is out of range [0, {self.n_frames})")
        return float(_times(self, np.array([i]))[0])


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive frames as `read_frames` yields them.

    Attributes:
        indices: int64 (B,) frame indices.
        times: float64 (B,) their times in seconds (`VideoInfo.time_of`).
        images: uint8 (B, H, W, 3) RGB, row-major: images[b, y, x].
    """

    indices: np.ndarray
    times: np.ndarray
    images: np.ndarray


def probe(path: str | Path) -> VideoInfo:
    """Probe a video exactly: frame count from its packets, keyframes, frame rate, VFR flag.

    Args:
        path: the video file.

    Returns:
        Its VideoInfo.

    Raises:
        VideoError: the file is missing, not a video, has no video stream, or is truncated or
            corrupt (its container promises more frames than it holds, or demuxing fails).
    """
    p = Path(path)
    if not p.is_file():
        raise VideoError(p, "no such file")
    try:
        meta = ffmpeg.probe(str(p), cmd=ffprobe_executable())
    except ffmpeg.Error as e:
        raise VideoError(p, f"not a readable video: {_last_line(e.stderr)}") from None
    streams = [
        s
        for s in meta.get("streams", [])
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not streams:
        raise VideoError(p, "has no video stream")
    stream = streams[0]
    index = int(stream["index"])
    try:
        table = ffmpeg_tools.probe_packets(p, index)
    except ffmpeg.Error as e:
        raise VideoError(p, f"cannot list its packets: {_last_line(e.stderr)}") from None
    if table.errors:
        raise VideoError(p, f"truncated or corrupt: {_last_line(table.errors)}")
    declared = int(stream.get("nb_frames", 0) or 0)
    if declared and len(table.pts) < declared:
        raise VideoError(p, f"truncated: its container lists {declared} frames but holds {len(table.pts)}")
    build = None
    if stream.get("codec_name") == "h264":
        found = re.search(rb"x264 - core (\d+)", ffmpeg_tools.first_packet(p, index))
        build = int(found.group(1)) if found else None
    return _index(p, stream, table, build)


def probe_to_json(path: str | Path, out: str | Path) -> VideoError | None:
    """Probe a video and write its probe to `out`; for a video that cannot be probed, write its error there.

    A corrupt video then fails alone, where its frames are asked for (`VideoInfo.read_json`
    raises the recorded error), and the other videos of an archive go on.

    Returns:
        The error, or None when the video was probed.
    """
    try:
        info = probe(path)
    except VideoError as error:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps({"path": error.path, "error": error.message, "where": error.where}, indent=1))
        return error
    info.write_json(out)
    return None


def _index(p: Path, stream: dict[str, Any], table: PacketTable, x264_build: int | None) -> VideoInfo:
    keep = ~table.discard
    ts = table.pts[keep] if np.all(table.pts[keep] != PacketTable.missing) else table.dts[keep]
    if len(ts) == 0:
        raise VideoError(p, "its video stream has no frames")
    if np.any(ts == PacketTable.missing):
        raise VideoError(p, "its frames have no timestamps; remux it (ffmpeg -i in -c copy out.mkv)")
    order = np.argsort(ts, kind="stable")
    ts_sorted = ts[order]  # (N,) presentation order
    gaps = np.diff(ts_sorted)  # (N - 1,)
    if np.any(gaps <= 0):
        i = int(np.argmin(gaps > 0))
        raise VideoError(p, "two frames share one timestamp; re-encode it", where=f"frame {i + 1}")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keyframes = tuple(sorted(int(r) for r in rank[table.key[keep]]))
    tb = Fraction(stream["time_base"])
    n = len(ts_sorted)
    vfr = bool(n > 2 and gaps.max() - gaps.min() > 1)  # CFR timestamps may jitter by one tick of rounding
    nominal = _rate(stream.get("r_frame_rate")) or _rate(stream.get("avg_frame_rate"))
    if n > 1:
        measured = float((n - 1) / ((ts_sorted[-1] - ts_sorted[0]) * tb))
        fps = nominal if nominal and abs(nominal - measured) <= 1e-4 * measured else measured
    elif nominal:
        fps = nominal
    else:
        raise VideoError(p, "has one frame and no frame rate")
    rel = (ts_sorted - ts_sorted[0]).astype(object) * tb  # exact Fractions, (N,)
    timestamps = tuple(float(t) for t in rel) if vfr else None
    last = int(table.duration[keep][order[-1]]) or (int(np.median(gaps)) if n > 1 else 0)
    duration = float(rel[-1] + last * tb) if vfr or not n > 1 else n / fps
    return VideoInfo(
        path=str(p),
        n_frames=n,
        fps=float(fps),
        width=int(stream["width"]),
        height=int(stream["height"]),
        codec=str(stream.get("codec_name", "")),
        pix_fmt=str(stream.get("pix_fmt", "")),
        duration_s=duration,
        variable_frame_rate=vfr,
        keyframes=keyframes,
        timestamps=timestamps,
        start_time_s=float(ts_sorted[0] * tb),
        stream_index=int(stream["index"]),
        x264_build=x264_build,
    )


def _rate(text: str | None) -> float | None:
    if not text or text.startswith("0/") or text.endswith("/0"):
        return None
    return float(Fraction(text))


def _last_line(stderr: bytes | str | None) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else (stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "ffprobe gave no reason"


def _times(info: VideoInfo, indices: np.ndarray) -> np.ndarray:
    """float64 (N,) times in seconds from the first frame of the frames `indices` (N,)."""
    if info.timestamps is not None:
        return info._timestamp_array[indices]
    return indices.astype(np.float64) / info.fps


def _bounds(info: VideoInfo, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute-time windows [lo, hi) (N,) that hold exactly frames `indices` (N,): midpoints to neighbours."""
    t = _times(info, indices) + info.start_time_s
    before = _times(info, np.maximum(indices - 1, 0)) + info.start_time_s
    after = _times(info, np.minimum(indices + 1, info.n_frames - 1)) + info.start_time_s
    lo = np.where(indices > 0, (before + t) / 2, -np.inf)
    hi = np.where(indices < info.n_frames - 1, (t + after) / 2, np.inf)
    return lo, hi


def _check_range(info: VideoInfo, start: int, stop: int) -> tuple[int, int]:
    start, stop = operator.index(start), operator.index(stop)
    if not 0 <= start <= stop <= info.n_frames:
        raise ValueError(f"{info.path}: frames [{start}, {stop}) are not inside [0, {info.n_frames})")
    return start, stop


def read_frames(
    path: str | Path, start: int, stop: int, *, info: VideoInfo | None = None, batch_size: int = 1
) -> Iterator[FrameBatch]:
    """Stream frames [start, stop) in batches, exactly as a full sequential decode gives them.

    Seeks to a keyframe before `start`, so a range deep into a long video costs about one GOP of
    decoding, not all frames before it. Holds at most one batch (plus the pipe buffer).

    Args:
        path: the video file.
        start: first frame index.
        stop: one past the last frame index.
        info: the video's `probe` result, if already known (saves probing again).
        batch_size: frames per batch; the last batch may be shorter.

    Yields:
        FrameBatch with images uint8 (B, H, W, 3) RGB.

    Raises:
        ValueError: [start, stop) is not inside [0, n_frames), or batch_size < 1.
        VideoError: the video cannot be decoded up to `stop` (names the file and the frame).
    """
    info = info or probe(path)
    start, stop = _check_range(info, start, stop)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    shape = (info.height, info.width, 3)
    batch: list[np.ndarray] = []  # [the batch being filled, (B, H, W, 3)]

    def into(k: int) -> memoryview:
        """Where frame `start + k` goes: its row of the current batch, a new batch at each batch's first frame."""
        if k % batch_size == 0:
            batch[:] = [np.empty((min(batch_size, stop - start - k), *shape), dtype=np.uint8)]
        return memoryview(batch[0][k % batch_size]).cast("B")

    frames = decode_into(path, info, start, stop, into)
    try:
        for k in frames:
            if (k + 1) % batch_size == 0 or start + k + 1 == stop:
                images = batch[0]
                indices = np.arange(start + k + 1 - len(images), start + k + 1, dtype=np.int64)  # (B,)
                yield FrameBatch(indices=indices, times=_times(info, indices), images=images)
    finally:
        frames.close()  # stops ffmpeg when the caller stops early


def read_frame_array(path: str | Path, indices: Any, *, info: VideoInfo | None = None) -> np.ndarray:
    """Read arbitrary frames, exactly as a full sequential decode gives them.

    Frames close together are read in one pass; frames far apart each seek to their keyframe.

    Args:
        path: the video file.
        indices: int (N,) frame indices, sorted ascending (repeats allowed).
        info: the video's `probe` result, if already known.

    Returns:
        uint8 (N, H, W, 3) RGB frames, in the order of `indices`.

    Raises:
        ValueError: indices not 1-D, not sorted, or out of range.
        VideoError: the video cannot be decoded up to the frames asked for.
    """
    info = info or probe(path)
    idx = np.asarray(indices).reshape(-1) if np.ndim(indices) <= 1 else None
    if idx is None or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"{info.path}: frame indices must be a 1-D sequence of integers")
    idx = idx.astype(np.int64)
    if np.any(np.diff(idx) < 0):
        raise ValueError(f"{info.path}: frame indices must be sorted ascending")
    if idx.size and (idx[0] < 0 or idx[-1] >= info.n_frames):
        raise ValueError(f"{info.path}: frame indices must be inside [0, {info.n_frames})")
    unique, inverse = np.unique(idx, return_inverse=True)  # (U,), (N,)
    out = np.empty((len(unique), info.height, info.width, 3), dtype=np.uint8)  # (U, H, W, 3)
    keys = np.asarray(info.keyframes or (0,), dtype=np.int64)
    group_of = np.searchsorted(keys, unique, side="right") - 1  # keyframe before each frame
    seek_to = keys[np.maximum(group_of, 0)]
    # A new pass starts where seeking to a frame's keyframe skips frames the current pass would decode.
    new_pass = np.ones(len(unique), dtype=bool)
    new_pass[1:] = seek_to[1:] > unique[:-1]
    starts = [*np.flatnonzero(new_pass).tolist(), len(unique)]
    for a, b in itertools.pairwise(starts):
        for _ in _decode(Path(path), info, unique[a:b], lambda k, a=a: memoryview(out[a + k]).cast("B")):
            pass
    return out[inverse.reshape(-1)]


_PIPE_BYTES = 1 << 20  # Linux's default largest pipe (/proc/sys/fs/pipe-max-size)


def _widen_pipe(pipe: Any) -> None:
    """Let ffmpeg's stdout pipe hold 1 MB instead of 64 kB: a frame in one go, not in 15 wake-ups."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except (ImportError, OSError):  # not Linux, or a lower limit: the default pipe works, a little slower
        pass


def _read_exactly(pipe: Any, buffer: memoryview) -> int:
    """Fill `buffer` from `pipe`; the number of bytes read, fewer only at the end of the stream."""
    filled = 0
    while filled < len(buffer) and (n := pipe.readinto(buffer[filled:])):
        filled += n
    return filled


_DECODER_RETRIES = 2  # new ffmpeg processes after one was killed, before the read fails


class _DecoderDied(Exception):
    """The ffmpeg process was killed before it gave every frame; `index` is the first frame not read."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class _SeekFailed(Exception):
    """A seek whose frames failed verification; the caller retries from further back."""


Destination = Callable[[int], memoryview]
"""Where the k-th frame asked for goes: a writable buffer of H * W * 3 bytes (RGB, row-major)."""


def decode_into(
    path: str | Path, info: VideoInfo, start: int, stop: int, into: Destination, *, threads: int | None = None
) -> Iterator[int]:
    """Decode frames [start, stop) exactly as a full sequential decode gives them, into buffers of the caller's.

    The lowest level of frame reading, for readers that keep their own buffers (batches, pinned
    memory): no frame is copied after ffmpeg's pipe.

    Args:
        path: the video file.
        info: its probe.
        start: first frame index.
        stop: one past the last frame index.
        into: where frame `start + k` goes, for k = 0, 1, ...; called again with the same k when
            a failed seek makes the reader read that frame again (so the same buffer may be given).
        threads: ffmpeg's decoding threads (None: ffmpeg's own choice, about one per core).

    Yields:
        k, once frame `start + k` is in `into(k)` and checked against the decoder's timestamps.

    Raises:
        ValueError: [start, stop) is not inside [0, n_frames).
        VideoError: the video cannot be decoded up to `stop` (names the file and the frame).
    """
    start, stop = _check_range(info, start, stop)
    yield from _decode(Path(path), info, np.arange(start, stop, dtype=np.int64), into, threads)


def _decode(
    path: Path, info: VideoInfo, wanted: np.ndarray, into: Destination, threads: int | None = None
) -> Iterator[int]:
    """Decode sorted unique frame indices `wanted` (N,), the k-th into `into(k)`; yield k once it is there, verified."""
    done = 0
    tier: _Tier = "keyframe"
    deaths = 0
    while done < len(wanted):
        rest = wanted[done:]
        seek = _seek_point(info, int(rest[0]), tier)
        if seek is None:
            tier = "sequential"
        try:
            for _ in _Pass(path, info, rest, seek, tier, threads).frames(lambda j, done=done: into(done + j)):
                yield done
                done += 1
        except _SeekFailed as e:
            tier = "margin" if tier == "keyframe" else "sequential"
            logger.warning("%s: %s; reading again from further back (%s)", path, e, tier)
        except _DecoderDied as e:
            deaths += 1
            if deaths > _DECODER_RETRIES:
                raise VideoError(path, f"{e} ({deaths} times)", where=f"frame {e.index}") from None
            tier = "keyframe"  # a new decoder from the keyframe before the first frame not yet read
            logger.warning("%s: %s; a new ffmpeg decodes from frame %d on", path, e, e.index)


def _seek_point(info: VideoInfo, first: int, tier: _Tier) -> int | None:
    """The keyframe to seek to for a pass whose first wanted frame is `first`; None: decode from frame 0."""
    if tier == "sequential":
        return None
    keys = np.asarray(info.keyframes, dtype=np.int64)
    candidates = keys[keys <= first]
    if tier == "margin":
        # at least _MARGIN frames before the keyframe that the first wanted frame depends on
        anchor = int(candidates[-1]) if len(candidates) else first
        candidates = keys[keys <= anchor - _MARGIN]
    if len(candidates) == 0 or candidates[-1] == 0:
        return None
    return int(candidates[-1])


class _Pass:
    """One ffmpeg process that decodes from a seek point and outputs the wanted frames."""

    def __init__(
        self, path: Path, info: VideoInfo, wanted: np.ndarray, seek: int | None, tier: _Tier, threads: int | None = None
    ) -> None:
        self.path, self.info, self.wanted, self.seek, self.tier = path, info, wanted, seek, tier
        self.threads = threads
        self.lo, self.hi = _bounds(info, wanted)  # (N,), (N,) absolute seconds
        runs = np.flatnonzero(np.diff(wanted) != 1) + 1  # boundaries of consecutive runs
        first, last = np.concatenate([[0], runs]), np.concatenate([runs, [len(wanted)]]) - 1
        self.run_lo, self.run_hi = self.lo[first], self.hi[last]  # (R,), (R,)
        self.frame_bytes = info.width * info.height * 3

    def _expression(self) -> str:
        terms = []
        for lo, hi in zip(self.run_lo.tolist(), self.run_hi.tolist(), strict=True):
            parts = ([f"gte(t,{lo!r})"] if math.isfinite(lo) else []) + ([f"lt(t,{hi!r})"] if math.isfinite(hi) else [])
            terms.append("*".join(parts) or "1")
        return "+".join(terms)

    def _selected(self, pts_us: int) -> bool:
        t = pts_us * (1 / 1000000)  # as the select filter computes t
        return bool(np.any((self.run_lo <= t) & (t < self.run_hi)))

    def _start(self) -> Any:
        options: dict[str, Any] = {"nostdin": None, "hide_banner": None, "nostats": None}
        options.update(loglevel="level+info", copyts=None)
        if self.threads is not None:
            options["threads"] = self.threads
        if self.info.codec == "h264" and self.info.x264_build is not None:
            options["x264_build"] = self.info.x264_build
        if self.seek is not None:
            target = self.info.start_time_s + float(_times(self.info, np.array([self.seek]))[0])
            seek_us = math.ceil(round(target * 1e6, 3))  # never before the keyframe: the demuxer seeks back from it
            options.update(ss=f"{seek_us / 1e6:.6f}", seek_timestamp=1, noaccurate_seek=None)
        video = ffmpeg.input(str(self.path), **options)[str(self.info.stream_index)]
        video = video.filter("settb", "AVTB").filter("showinfo", checksum=0).filter("select", self._expression())
        out = video.output(
            "pipe:", format="rawvideo", pix_fmt="rgb24", vframes=len(self.wanted), **ffmpeg_tools.passthrough_timing()
        )
        proc = out.run_async(cmd=ffmpeg_executable(), pipe_stdout=True, pipe_stderr=True)
        _widen_pipe(proc.stdout)
        return proc

    def _fail(self, index: int, reason: str, log: ffmpeg_tools.DecodeLog) -> Exception:
        if self.tier == "sequential":
            return VideoError(self.path, f"{reason} (ffmpeg: {log.last_words()})", where=f"frame {index}")
        return _SeekFailed(f"seeking to keyframe {self.seek} for frame {index}: {reason}")

    def frames(self, into: Destination) -> Iterator[int]:
        """Read the j-th wanted frame into `into(j)` and yield its index once checked against the decode log."""
        proc = self._start()
        log = ffmpeg_tools.DecodeLog(proc.stderr, self._selected)
        try:
            for j, index in enumerate(self.wanted.tolist()):
                shown = log.next_selected() if _read_exactly(proc.stdout, into(j)) == self.frame_bytes else None
                if shown is None:
                    proc.wait()
                    log.join()
                    reason = f"decoding stopped after {j} of {len(self.wanted)} frames asked for"
                    if proc.returncode < 0:  # killed (out of memory, a signal): not the video's fault
                        raise _DecoderDied(f"{reason}: ffmpeg was killed by signal {-proc.returncode}", index)
                    raise self._fail(index, reason, log)
                t = shown.pts_us * (1 / 1000000)
                if not self.lo[j] <= t < self.hi[j]:
                    expected = self.info.start_time_s + self.info.time_of(index)
                    reason = f"expected the frame at {expected:.6f} s, the decoder gave the one at {t:.6f} s"
                    raise self._fail(index, reason, log)
                if self.tier == "keyframe" and shown.errors_before > 0:
                    raise self._fail(index, f"decode errors: {log.last_words()}", log)
                if self.tier == "margin" and shown.errors_before > (log.errors_before_first or 0):
                    raise self._fail(index, f"decode errors: {log.last_words()}", log)
                yield index
            if self.tier == "sequential" and log.n_errors:
                logger.warning("%s: the sequential decode itself reports errors: %s", self.path, log.last_words())
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()
            log.join()
            proc.stderr.close()
