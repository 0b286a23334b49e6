"""The host's side of :mod:`hw.protocol`: a client and a session checked against the golden model.

:class:`BoardClient` talks to any :class:`Transport` (``write`` bytes, ``read``
up to n bytes with a timeout): :class:`SerialTransport` on a real port
(pyserial), or the co-simulation's transport that bit-bangs the simulated
UART pins (``sim/cocotb_uart.py``), so the tests run this very code.  It keeps at
most ``slots`` frames outstanding (the board's buffer, from its ``INFO``
reply) and checks that every reply answers the oldest outstanding frame.

:class:`BoardSession` adds the golden model: it checks ``INFO`` against an
artifact (a wrong bitstream is an error naming the field that differs),
resets the board so its Gaussian sampler and the host's
:class:`model.golden.Sampler` start together, and compares every word of
every job with :meth:`model.golden.GoldenModel.run`.

Errors meant for a person derive from :class:`HostError`; their messages
say what went wrong and what to check.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import serial
from tqdm import tqdm

from model.artifact import Artifact
from model.fixed import MODES
from model.golden import GoldenModel, Sampler

from .protocol import (
    FLAG, BoardInfo, ProtocolError, Reply, ReplyDecoder, Status, decode_words, info_frame,
    job_frame, output_words, reset_frame,
)

__all__ = ["HostError", "BoardTimeout", "LinkError", "BoardError", "WrongBitstream",
           "Transport", "SerialTransport", "BoardClient", "RunResult", "BoardSession"]

#: Replies ``connect`` skips before its INFO reply: answers to frames a
#: previous session left on the board (at most its slots, plus the one the
#: opening FLAG cuts off).
STALE_REPLIES = 256


class HostError(RuntimeError):
    """A problem a person can act on; the message says which."""


class BoardTimeout(HostError):
    """The board did not answer in time."""


class LinkError(HostError):
    """Bytes from the board that break the protocol (a corrupt or unexpected reply)."""


class BoardError(HostError):
    """The board answered a frame with an error status."""

    def __init__(self, reply: Reply, what: str):
        self.reply = reply
        super().__init__(f"board answered {what} (tag {reply.tag}) with {reply.status.name}")


class WrongBitstream(HostError):
    """The board runs another artifact (or protocol version) than the host's."""


class Transport(Protocol):
    """A byte pipe to the board."""

    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending (returns without waiting for the line)."""

    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes, as soon as at least one has arrived; ``b""`` if none
        arrives within ``timeout`` seconds (of the board's time)."""


class SerialTransport:
    """A serial port (pyserial), 8N1 at ``baud``."""

    def __init__(self, port: str, baud: int):
        self.port = port
        try:
            self._serial = serial.Serial(port, baud, timeout=0)
        except (serial.SerialException, ValueError) as exc:
            raise HostError(f"cannot open serial port {port!r} at {baud:,} baud: {exc}") from None

    def write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
        except serial.SerialException as exc:
            raise HostError(f"writing to {self.port!r} failed: {exc}") from None

    def read(self, n: int, timeout: float) -> bytes:
        try:
            if self._serial.timeout != timeout:     # setting it reconfigures the port
                self._serial.timeout = timeout
            first = self._serial.read(1)
            if not first:
                return b""
            # what has arrived meanwhile is there already: no waiting
            return first + self._serial.read(min(n - 1, self._serial.in_waiting))
        except serial.SerialException as exc:
            raise HostError(f"reading from {self.port!r} failed: {exc}") from None

    def close(self) -> None:
        self._serial.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BoardClient:
    """Frames out, replies in, in order, through ``transport``.

    Parameters
    ----------
    transport : :class:`Transport`
    timeout : float
        Seconds to wait for the next byte of a reply.
    """

    def __init__(self, transport: Transport, *, timeout: float = 1.0):
        self.transport = transport
        self.timeout = timeout
        self.info: BoardInfo | None = None
        self._decoder = ReplyDecoder()
        self._replies: deque[Reply] = deque()
        self._outstanding: deque[int] = deque()   # tags, oldest first
        self._next_tag = 0

    @property
    def outstanding(self) -> int:
        """Frames sent and not yet answered."""
        return len(self._outstanding)

    def new_tag(self) -> int:
        tag = self._next_tag
        self._next_tag = (tag + 1) & 0xFF
        return tag

    def send(self, frame: bytes, tag: int) -> None:
        """Write ``frame`` (built by :mod:`hw.protocol`) whose reply will carry ``tag``."""
        self._outstanding.append(tag)
        self.transport.write(frame)

    def _next_reply(self, waiting_for: str) -> Reply:
        while not self._replies:
            data = self.transport.read(4096, self.timeout)
            if not data:
                got = (f"{self._decoder.pending} bytes of a reply" if self._decoder.pending
                       else "nothing")
                raise BoardTimeout(f"no reply to {waiting_for} within {self.timeout:g} s "
                                   f"(received {got})")
            try:
                self._replies.extend(self._decoder.feed(data))
            except ProtocolError as exc:
                raise LinkError(f"garbled reply from the board: {exc}") from None
        return self._replies.popleft()

    def receive(self) -> Reply:
        """The reply to the oldest outstanding frame (an OVERFLOW reply answers as
        many frames as it says it refused)."""
        if not self._outstanding:
            raise RuntimeError("receive() with no frame outstanding")
        expected = self._outstanding[0]
        reply = self._next_reply(f"the frame with tag {expected}")
        if reply.tag != expected:
            raise LinkError(f"reply carries tag {reply.tag}, expected {expected}: a frame or "
                            "reply was lost")
        answered = reply.refused if reply.status == Status.OVERFLOW else 1
        if not 1 <= answered <= len(self._outstanding):
            raise LinkError(f"OVERFLOW reply refuses {answered} frames, {self.outstanding} "
                            "are outstanding")
        for _ in range(answered):
            self._outstanding.popleft()
        return reply

    def request(self, frame_of_tag, what: str) -> Reply:
        """Send one frame (``frame_of_tag(tag)``) when nothing is outstanding and return
        its reply; an error status raises :class:`BoardError`."""
        tag = self.new_tag()
        self.send(frame_of_tag(tag), tag)
        reply = self.receive()
        if reply.status != Status.OK:
            raise BoardError(reply, what)
        return reply

    def connect(self) -> BoardInfo:
        """Cut off any partial frame the board holds (a FLAG), skip replies left from
        a previous session, and read the board's :class:`BoardInfo`."""
        self.transport.write(bytes([FLAG]))
        tag = self.new_tag()
        self.transport.write(info_frame(tag))
        for _ in range(STALE_REPLIES):
            try:
                reply = self._next_reply("INFO (is the board programmed with an fxvae "
                                         "bitstream, at this baud rate?)")
            except LinkError:
                continue          # a reply cut in half by a previous session
            if reply.tag == tag and reply.status == Status.OK:
                self.info = BoardInfo.from_bytes(reply.payload)
                self._outstanding.clear()
                return self.info
        raise LinkError(f"no INFO reply among {STALE_REPLIES} replies")

    def reset(self) -> None:
        """Reset the core: its Gaussian sampler restarts from its seeds."""
        self.request(reset_frame, "RESET")

    def jobs(self, mode: str, inputs, *, progress: bool = False):
        """Yield each job's output words (int64 arrays), in order, for ``inputs``
        (one int array per image, or ``None`` per ``generate`` job), keeping the
        board's buffer full."""
        if self.info is None:
            raise RuntimeError("connect() first")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        width, window = self.info.input_fmt[0], self.info.slots
        words = output_words(self.info, mode)
        inputs = list(inputs)
        with tqdm(total=len(inputs), unit="img", disable=not progress, desc=mode) as bar:
            sent = 0
            while sent < len(inputs) or self.outstanding:
                if sent < len(inputs) and self.outstanding < window:
                    tag = self.new_tag()
                    self.send(job_frame(tag, mode, inputs[sent], width), tag)
                    sent += 1
                    continue
                reply = self.receive()
                if reply.status != Status.OK:
                    raise BoardError(reply, f"a {mode} job")
                values = decode_words(reply.payload, self.info.out_width)
                if values.size != words:
                    raise LinkError(f"{mode} reply of {values.size} words, expected {words}")
                bar.update()
                yield values


@dataclass
class RunResult:
    """One mode's jobs: the board's and the golden model's outputs (ints)."""

    mode: str
    board: np.ndarray
    golden: np.ndarray

    @property
    def mismatched_images(self) -> list[int]:
        return [int(k) for k in np.flatnonzero((self.board != self.golden).any(axis=1))]


class BoardSession:
    """A board running ``artifact``, every output checked against the golden model."""

    def __init__(self, client: BoardClient, artifact: Artifact):
        self.client = client
        self.artifact = artifact
        self.golden = GoldenModel(artifact)
        self.sampler = Sampler(artifact.sampler)

    def open(self) -> BoardInfo:
        """Connect, check the board runs this artifact, reset it."""
        info = self.client.connect()
        problems = info.mismatches(self.artifact)
        if problems:
            raise WrongBitstream("the board's bitstream was built for another artifact "
                                 "or protocol: " + "; ".join(problems))
        self.reset()
        return info

    def reset(self) -> None:
        self.client.reset()
        self.sampler = Sampler(self.artifact.sampler)

    def run(self, mode: str, x=None, n: int | None = None, *, progress: bool = False) -> RunResult:
        """``n`` jobs of ``mode`` (``generate``), or one per row of ``x`` (ints in the
        input format); the golden model's sampler advances as the board's does."""
        if mode == "generate":
            inputs = [None] * n
            golden = self.golden.run(mode, n=n, sampler=self.sampler)
        else:
            x = np.asarray(x, dtype=np.int64)
            inputs = list(x)
            golden = self.golden.run(mode, x, sampler=self.sampler)
        board = np.array(list(self.client.jobs(mode, inputs, progress=progress)),
                         dtype=np.int64).reshape(golden.shape)
        return RunResult(mode, board, golden)
