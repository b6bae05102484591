"""Locating ffmpeg and ffprobe, and talking to them (the plumbing under `posecore.io.video`).

Four things live here:

- `ffmpeg_executable` / `ffprobe_executable`: the executables found on PATH, or an error that
  says how to install them.
- `probe_packets` and `first_packet`: the per-packet table of a stream (timestamps, key flags)
  and the bytes of its first packet, read without decoding.
- `DecodeLog`: drains an ffmpeg process's stderr in a thread (so ffmpeg never blocks on a full
  pipe) and turns it into what the reader verifies each frame against: the presentation time of
  every frame that the decoder returned and that the `select` filter kept, and how many decode
  errors ffmpeg reported before it.
- `pipe_frames`: runs an ffmpeg command that reads raw frames on its stdin (encoding videos,
  clips and images), raising with ffmpeg's own message when it fails; `h264_command` is the
  command that encodes such frames as an H.264 MP4 that browsers play.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

import ffmpeg
import numpy as np

_INSTALL_HINT = (
    "install FFmpeg (it provides both ffmpeg and ffprobe) and put it on PATH: "
    "`apt-get install ffmpeg` (Debian/Ubuntu), `conda install -c conda-forge ffmpeg`, or `brew install ffmpeg`"
)


def _find(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} was not found on PATH; {_INSTALL_HINT}")
    return found


def ffmpeg_executable() -> str:
    """The ffmpeg executable on PATH.

    Returns:
        Its absolute path.

    Raises:
        FileNotFoundError: when there is none, with a message saying how to install it.
    """
    return _find("ffmpeg")


def ffprobe_executable() -> str:
    """The ffprobe executable on PATH.

    Returns:
        Its absolute path.

    Raises:
        FileNotFoundError: when there is none, with a message saying how to install it.
    """
    return _find("ffprobe")


@lru_cache(maxsize=4)
def _version_of(executable: str) -> tuple[int, int]:
    first = subprocess.run([executable, "-version"], capture_output=True, text=True, check=False).stdout
    match = re.match(r"\S+ version n?(\d+)\.(\d+)", first)
    # Builds from git ("ffmpeg version N-112233-g...") are newer than any release.
    return (int(match.group(1)), int(match.group(2))) if match else (99, 0)


def passthrough_timing() -> dict[str, str]:
    """The output option that makes ffmpeg neither drop nor duplicate frames.

    Returns:
        `{"fps_mode": "passthrough"}` for ffmpeg 5.1 and newer, `{"vsync": "passthrough"}` before.
    """
    return {"fps_mode": "passthrough"} if _version_of(ffmpeg_executable()) >= (5, 1) else {"vsync": "passthrough"}


def pipe_frames(command: list[str], frames: Iterable[np.ndarray], what: str) -> None:
    """Run an ffmpeg command that reads raw video on stdin, writing uint8 (H, W, 3) frames to it.

    ffmpeg's messages go to a temporary file, so a full stderr pipe can never block it; if it
    stops early, the frames left are not written and its exit code and message say why.

    Args:
        command: the command line, e.g. from ffmpeg-python's `compile()`, with `-i pipe:` rawvideo
            input of the frames' size and pixel format.
        frames: the frames, C-contiguous or not, in order.
        what: what ffmpeg was doing, for the error message ("encoding a clip", "writing <path>").

    Raises:
        RuntimeError: ffmpeg exited with an error: "ffmpeg failed <what>: <its message>".
    """
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=stderr)
        try:
            for frame in frames:
                process.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its exit code and message say why
        except BaseException:
            process.kill()  # the frames failed: ffmpeg must not finish a partial file
            process.wait()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):  # flushing into an ffmpeg that stopped
                process.stdin.close()
        if process.wait() != 0:
            stderr.seek(0)
            raise RuntimeError(f"ffmpeg failed {what}: {stderr.read().decode(errors='replace').strip()}")


def h264_command(
    out: str | Path, size: tuple[int, int], fps: float, *, crf: int, preset: str, threads: int | None = None
) -> list[str]:
    """The ffmpeg command that encodes rgb24 frames from stdin as an H.264 yuv420p MP4 (for `pipe_frames`).

    The index (moov atom) goes first (faststart), so a browser starts playing at once. yuv420p
    needs an even width and height: an odd one gets one more column or row at the right or
    bottom (a copy of the last), so pixel coordinates stay those of the frames.

    Args:
        out: the MP4 file to write (overwritten).
        size: (width, height) of the frames.
        fps: frame rate of the output.
        crf: x264's constant rate factor (0 lossless, 23 its default, 51 worst).
        preset: x264's speed preset ("ultrafast" ... "veryslow").
        threads: encoder threads; None lets x264 choose (about 1.5 per core).

    Returns:
        The command line.
    """
    width, height = size
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps)
    if width % 2 or height % 2:
        # The new column or row repeats its neighbour: black there would bleed into the last real
        # pixels through yuv420p's colour, shared by 2x2 pixels.
        stream = stream.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
        stream = stream.filter("fillborders", right=width % 2, bottom=height % 2, mode="smear")
        stream = stream.filter("format", "rgb24")  # padded in RGB: converting first would mix at the odd edge
    options = {"format": "mp4", "vcodec": "libx264", "pix_fmt": "yuv420p", "crf": crf, "preset": preset}
    options |= {"movflags": "+faststart"} | ({"threads": threads} if threads else {})
    return (
        stream.output(str(out), **options)
        .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        .overwrite_output()
        .compile(cmd=ffmpeg_executable())
    )


@dataclass(frozen=True)
class PacketTable:
    """The packets of one stream in file (decode) order, as ffprobe lists them without decoding.

    Attributes:
        pts: int64 (P,) presentation timestamps in the stream's time base; `missing` where absent.
        dts: int64 (P,) decode timestamps; `missing` where absent.
        duration: int64 (P,) packet durations; 0 where absent.
        key: bool (P,) keyframe flag.
        discard: bool (P,) packets that the decoder decodes but never outputs (edit lists).
        errors: what ffprobe printed on stderr while reading them (demuxing errors, truncation).
    """

    pts: np.ndarray
    dts: np.ndarray
    duration: np.ndarray
    key: np.ndarray
    discard: np.ndarray
    errors: str

    missing = np.iinfo(np.int64).min


def probe_packets(path: str | Path, stream_index: int) -> PacketTable:
    """List the packets of one stream (demuxing only, no decoding; fast even for hours of video).

    Args:
        path: the video file.
        stream_index: the stream's index in the file.

    Returns:
        The packet table, in the order the packets are stored (decode order).

    Raises:
        ffmpeg.Error: when ffprobe exits with an error.
    """
    args = [ffprobe_executable(), "-v", "error", "-select_streams", str(stream_index)]
    args += ["-show_entries", "packet=pts,dts,duration,flags", "-of", "csv=p=0", str(path)]
    done = subprocess.run(args, capture_output=True, check=False)
    if done.returncode != 0:
        raise ffmpeg.Error("ffprobe", done.stdout, done.stderr)
    rows = [line.split(",") for line in done.stdout.decode().splitlines() if line.strip()]
    rows = [row for row in rows if len(row) == 4]

    def column(i: int, default: int) -> np.ndarray:
        values = [default if row[i] in ("N/A", "") else int(row[i]) for row in rows]
        return np.asarray(values, dtype=np.int64).reshape(-1)  # (P,)

    flags = [row[3] for row in rows]
    return PacketTable(
        pts=column(0, PacketTable.missing),
        dts=column(1, PacketTable.missing),
        duration=column(2, 0),
        key=np.asarray(["K" in f for f in flags], dtype=bool).reshape(-1),
        discard=np.asarray(["D" in f for f in flags], dtype=bool).reshape(-1),
        errors=done.stderr.decode(errors="replace").strip(),
    )


def first_packet(path: str | Path, stream_index: int) -> bytes:
    """The bytes of a stream's first packet (where encoders such as x264 write their version).

    Args:
        path: the video file.
        stream_index: the stream's index in the file.

    Returns:
        The packet's payload, or b"" when it cannot be read.
    """
    stream = ffmpeg.input(str(path))[str(stream_index)]
    graph = stream.output("pipe:", c="copy", format="data", vframes=1)
    try:
        out, _ = graph.run(cmd=ffmpeg_executable(), capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error:
        return b""
    return out


_SHOWINFO = re.compile(rb"\[Parsed_showinfo_\d+ @ [^\]]*\] \[info\] n:\s*\d+\s+pts:\s*(-?\d+)")
_ERROR = re.compile(rb"\[(?:error|fatal|panic)\]|corrupt decoded frame")


@dataclass(frozen=True)
class DecodedFrame:
    """One frame as the decoder returned it, seen through the `showinfo` filter.

    Attributes:
        pts_us: its presentation timestamp in microseconds (after `settb=AVTB`).
        errors_before: how many decode errors ffmpeg had reported before this frame came out.
    """

    pts_us: int
    errors_before: int


class DecodeLog:
    """Reads an ffmpeg process's stderr in a thread and keeps what frame verification needs.

    ffmpeg must run with `-loglevel level+info` and a `settb=AVTB,showinfo=checksum=0` filter
    placed before the `select` filter, so that every frame the decoder returns logs its pts in
    microseconds, after any decode error that came before it.

    Args:
        pipe: the process's stderr.
        selected: whether a frame with this pts (microseconds) passes the `select` filter, i.e.
            whether it will appear on stdout. Only those frames are queued, so the queue stays as
            short as the frames in flight in the pipe.
    """

    def __init__(self, pipe: IO[bytes], selected: Callable[[int], bool]) -> None:
        self._pipe = pipe
        self._selected = selected
        self._cond = threading.Condition()
        self._queue: deque[DecodedFrame] = deque()
        self._closed = False
        self.n_decoded = 0
        self.n_errors = 0
        self.errors_before_first: int | None = None
        self.first_errors: list[str] = []
        self.tail: deque[str] = deque(maxlen=6)
        self._thread = threading.Thread(target=self._drain, name="ffmpeg-stderr", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            for raw in iter(self._pipe.readline, b""):
                shown = _SHOWINFO.search(raw)
                with self._cond:
                    if shown is not None:
                        pts_us = int(shown.group(1))
                        if self.errors_before_first is None:
                            self.errors_before_first = self.n_errors
                        self.n_decoded += 1
                        if self._selected(pts_us):
                            self._queue.append(DecodedFrame(pts_us, self.n_errors))
                            self._cond.notify_all()
                        continue
                    line = raw.decode(errors="replace").strip()
                    if _ERROR.search(raw):
                        self.n_errors += 1
                        if len(self.first_errors) < 3:
                            self.first_errors.append(line)
                    if re.search(r"\[(?:warning|error|fatal|panic)\]", line):
                        self.tail.append(line)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def next_selected(self) -> DecodedFrame | None:
        """The next frame that the select filter passed, waiting for ffmpeg to log it.

        Returns:
            The frame, or None when stderr closed before one more was logged.
        """
        with self._cond:
            self._cond.wait_for(lambda: bool(self._queue) or self._closed)
            return self._queue.popleft() if self._queue else None

    def join(self, timeout: float = 10.0) -> None:
        """Wait until the process closed its stderr and everything in it was read.

        Args:
            timeout: seconds to wait at most.
        """
        self._thread.join(timeout)

    def last_words(self) -> str:
        """The first decode errors and the last lines ffmpeg printed, for an error message.

        Returns:
            One line.
        """
        lines = list(dict.fromkeys([*self.first_errors, *list(self.tail)[-3:]]))
        return " | ".join(lines) if lines else "ffmpeg printed no warning"
