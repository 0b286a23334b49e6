"""The byte protocol between a host and a board running :class:`hw.frontend.UartFrontend`.

One module for both sides: the constants, the CRC, the word encoding and the
framing are defined here; the host's client (:mod:`hw.host`) encodes and
decodes with these functions, the gateware (:mod:`hw.frontend`) is generated
from them, and :func:`check_request` is the reference model of every check the
board makes (its tests compare the hardware's verdict with it).  Everything
here is sans-IO: bytes in, bytes or records out.

Link
----
8N1 UART, :data:`DEFAULT_BAUD` = 3,000,000 baud: the FT231X (ULX3S) is
specified up to 3 Mbaud and the FT2232H (iCEBreaker) up to 12 Mbaud but
reported unreliable above ~6 Mbaud; 3 Mbaud is exact on both chips' baud
generators (3 MHz / 1), so it is the common fast rate.  No flow-control pins:
the host's window (below) is the flow control.

Framing (both directions)
-------------------------
A frame is a *body* followed by :data:`FLAG` (0x7E), HDLC-style byte stuffing
(RFC 1662): inside the body, 0x7E and 0x7D are sent as 0x7D followed by the
byte XOR 0x20.  So a frame boundary can never be mistaken for data, and
after any damage the receiver resynchronises at the next FLAG; an empty body
(two FLAGs in a row) is ignored, so a host may send a FLAG at any time to
cut off whatever partial frame the board holds.  Every body ends with a
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, :func:`crc16`, equal to
``binascii.crc_hqx(data, 0xFFFF)``) of the bytes before it, sent *big-endian*
so the CRC of a whole intact body is 0 (the board checks that residue).
Multi-byte fields are little-endian.

Request body (host -> board): ``CMD u8, TAG u8, MODE u8, COUNT u16, COUNT
words, CRC``.  Words are two's complement, ``ceil(width / 8)`` bytes each,
little-endian, ``width = artifact.input_fmt.width`` (bits above ``width`` are
ignored by the board; the host sends them sign-extended).

=========  ======================================================================
``CMD``    meaning
=========  ======================================================================
``INFO``   (1) reply: :class:`BoardInfo` bytes; ``MODE`` ignored, ``COUNT`` 0
``JOB``    (2) one image job, ``MODE`` = code of :data:`model.fixed.MODES`; ``COUNT`` =
           ``input_dim`` words for ``recon_mu``, ``recon_sample``, ``encode``, 0
           for ``generate``; reply: the output words
``RESET``  (3) resets the core (its Gaussian sampler restarts from its seeds);
           ``MODE`` ignored, ``COUNT`` 0; reply: empty
=========  ======================================================================

Reply body (board -> host): ``STATUS u8, TAG u8, LENGTH u16, LENGTH payload
bytes, CRC``.  ``TAG`` echoes the request's second byte (0 for a frame that
ended before it).  A job's payload is its output words (``core.out_width``
bits sign-extended to ``ceil(out_width / 8)`` bytes each, little-endian):
``input_dim`` sigmoid outputs, or ``2 * latent_dim`` head outputs (mu then
logvar) for ``encode``.

Every non-empty frame is answered once, in the order the frames arrived
(refused frames in a row share one OVERFLOW reply).  ``STATUS`` 0 is success; errors (checked in this order, first match wins,
:func:`check_request`) have an empty payload unless noted:

==============  ====  ================================================================
status          code  cause
==============  ====  ================================================================
``OVERFLOW``    6     the frame began while every buffer slot was taken (the host
                      exceeded the window); consecutive refused frames share one
                      reply: ``TAG`` of the first, payload u16 = how many
                      (saturating at 65535)
``TIMEOUT``     5     no byte for ``timeout_us`` inside a frame (cut off)
``LENGTH``      3     body shorter than a header and a CRC
``CHECKSUM``    4     CRC residue not 0
``LENGTH``      3     body length is not header + ``COUNT`` words + CRC
``COMMAND``     1     unknown ``CMD``
``MODE``        2     ``JOB`` with ``MODE`` >= 4
``LENGTH``      3     ``COUNT`` is not what the command and mode take
==============  ====  ================================================================

A rejected frame never reaches the core, so it consumes no sampler draws.

Window and buffering
--------------------
The board holds ``slots`` frames (:attr:`BoardInfo.slots`, 2 by default): a
slot is taken when a frame's first byte arrives and freed when its reply's
last byte has been handed to the transmitter.  A host that sends a new
frame only after the reply to the frame ``slots`` frames earlier has fully
arrived never overflows; with 2 slots the next frame's reception overlaps
the current job and its reply, so the link runs at its full-duplex rate.
"""

from __future__ import annotations

import binascii
import enum
import struct
from dataclasses import dataclass, fields

import numpy as np

from model.artifact import Artifact, artifact_digest
from model.fixed import MODES

from .core import IMAGE_MODES, MODE_CODES

__all__ = [
    "VERSION", "DEFAULT_BAUD", "DEFAULT_TIMEOUT_US", "DEFAULT_SLOTS", "FLAG", "ESC", "ESC_XOR",
    "REQUEST_HEADER", "REPLY_HEADER", "CRC_BYTES", "MIN_REQUEST", "DIGEST_BYTES",
    "Command", "Status", "ProtocolError",
    "crc16", "crc16_update", "crc16_taps", "word_bytes", "encode_words", "decode_words",
    "input_words", "output_words", "stuff", "Unstuffer",
    "request_body", "seal", "info_frame", "reset_frame", "job_frame",
    "RequestCheck", "check_request", "reply_body", "Reply", "ReplyDecoder",
    "BoardInfo",
]

VERSION = 1
DEFAULT_BAUD = 3_000_000
#: Inter-byte timeout inside a frame: far above any gap a USB-serial bridge
#: leaves inside one write, small enough that a cut-off frame is answered at once.
DEFAULT_TIMEOUT_US = 20_000
DEFAULT_SLOTS = 2

FLAG = 0x7E
ESC = 0x7D
ESC_XOR = 0x20

REQUEST_HEADER = 5   # CMD, TAG, MODE, COUNT (2)
REPLY_HEADER = 4     # STATUS, TAG, LENGTH (2)
CRC_BYTES = 2
MIN_REQUEST = REQUEST_HEADER + CRC_BYTES
#: Bytes of the artifact's SHA-256 the board reports.
DIGEST_BYTES = 16

CRC_POLY = 0x1021
CRC_INIT = 0xFFFF


class Command(enum.IntEnum):
    INFO = 1
    JOB = 2
    RESET = 3


class Status(enum.IntEnum):
    OK = 0
    COMMAND = 1
    MODE = 2
    LENGTH = 3
    CHECKSUM = 4
    TIMEOUT = 5
    OVERFLOW = 6


class ProtocolError(ValueError):
    """Bytes that do not follow the protocol; the message says which rule broke."""


# --------------------------------------------------------------------------
# CRC-16/CCITT-FALSE


def crc16_update(crc: int, byte: int) -> int:
    """One byte of the CRC, bit by bit: the definition the gateware is generated from."""
    crc ^= byte << 8
    for _ in range(8):
        crc = (crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1
    return crc & 0xFFFF


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC of ``data`` (``binascii.crc_hqx``: the same function, in C)."""
    return binascii.crc_hqx(bytes(data), crc)


def crc16_taps() -> list[tuple[int, int]]:
    """For each bit i of :func:`crc16_update`'s result, ``(crc_mask, byte_mask)``:
    bit i is the parity of ``crc & crc_mask`` XOR the parity of ``byte & byte_mask``.
    (The update is linear over GF(2), so the images of the unit vectors are its matrix.)"""
    crc_cols = [crc16_update(1 << j, 0) for j in range(16)]
    byte_cols = [crc16_update(0, 1 << j) for j in range(8)]
    return [(sum(1 << j for j, col in enumerate(crc_cols) if col >> i & 1),
             sum(1 << j for j, col in enumerate(byte_cols) if col >> i & 1))
            for i in range(16)]


# --------------------------------------------------------------------------
# Words


def word_bytes(width: int) -> int:
    """Bytes per word on the wire for a ``width``-bit two's complement word."""
    if width < 1:
        raise ValueError(f"word width must be >= 1, not {width!r}")
    return -(-width // 8)


def encode_words(values, width: int) -> bytes:
    """Signed ints of ``width`` bits -> little-endian two's complement bytes."""
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if values.size and (values.min() < lo or values.max() > hi):
        raise ValueError(f"words outside a signed {width}-bit range [{lo}, {hi}]")
    nb = word_bytes(width)
    return b"".join(int(v).to_bytes(nb, "little", signed=True) for v in values)


def decode_words(data: bytes, width: int) -> np.ndarray:
    """Little-endian two's complement bytes of ``width``-bit words -> int64 array."""
    nb = word_bytes(width)
    if len(data) % nb:
        raise ProtocolError(f"{len(data)} payload bytes are not a whole number of "
                            f"{nb}-byte words")
    return np.array([int.from_bytes(data[k:k + nb], "little", signed=True)
                     for k in range(0, len(data), nb)], dtype=np.int64)


def input_words(shape, mode: str) -> int:
    """Words a job of ``mode`` sends (hw.core: an image for every mode but ``generate``).
    ``shape``: anything with ``input_dim`` (an :class:`Artifact`, a :class:`BoardInfo`)."""
    return shape.input_dim if mode in IMAGE_MODES else 0


def output_words(shape, mode: str) -> int:
    """Words a job of ``mode`` returns (hw.core: ``2L`` head outputs for ``encode``).
    ``shape``: anything with ``input_dim`` and ``latent_dim``."""
    return 2 * shape.latent_dim if mode == "encode" else shape.input_dim


# --------------------------------------------------------------------------
# Framing


def stuff(body: bytes) -> bytes:
    """``body`` escaped, then FLAG: the bytes on the wire."""
    out = bytearray()
    for b in body:
        if b in (FLAG, ESC):
            out += bytes((ESC, b ^ ESC_XOR))
        else:
            out.append(b)
    out.append(FLAG)
    return bytes(out)


class Unstuffer:
    """Sans-IO receiver: ``feed(bytes)`` returns the bodies of the frames completed
    by them (empty bodies, i.e. FLAG fill, are skipped)."""

    def __init__(self):
        self._body = bytearray()
        self._escaped = False

    def feed(self, data: bytes) -> list[bytes]:
        bodies = []
        for b in data:
            if b == FLAG:
                if self._body:
                    bodies.append(bytes(self._body))
                self._body.clear()
                self._escaped = False
            elif b == ESC:
                self._escaped = True
            else:
                self._body.append(b ^ ESC_XOR if self._escaped else b)
                self._escaped = False
        return bodies

    @property
    def pending(self) -> int:
        """Bytes of a frame begun but not ended."""
        return len(self._body)


def request_body(cmd: int, tag: int, mode: int = 0, count: int = 0,
                 payload: bytes = b"") -> bytes:
    """A request body without its CRC.  Nothing is checked: tests build malformed
    frames with it (:func:`job_frame` builds well-formed ones)."""
    return bytes((cmd & 0xFF, tag & 0xFF, mode & 0xFF)) + struct.pack("<H", count) + payload


def seal(body: bytes) -> bytes:
    """Append the CRC (big-endian) and frame: the bytes to write."""
    return stuff(body + crc16(body).to_bytes(CRC_BYTES, "big"))


def info_frame(tag: int) -> bytes:
    return seal(request_body(Command.INFO, tag))


def reset_frame(tag: int) -> bytes:
    return seal(request_body(Command.RESET, tag))


def job_frame(tag: int, mode: str, words, width: int) -> bytes:
    """A job of ``mode`` on ``words`` (ints of ``width`` bits; empty for ``generate``)."""
    if mode not in MODE_CODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    values = np.asarray(words if words is not None else [], dtype=np.int64).reshape(-1)
    return seal(request_body(Command.JOB, tag, MODE_CODES[mode], values.size,
                             encode_words(values, width)))


@dataclass(frozen=True)
class RequestCheck:
    """The board's verdict on one request body (:func:`check_request`)."""

    status: Status
    tag: int
    cmd: int = 0
    mode: int = 0
    words: bytes = b""   # the payload bytes of an accepted job


def check_request(body: bytes, *, width: int, job_words: dict[int, int]) -> RequestCheck:
    """What the board does with a complete, non-empty request body (the checks of the
    module docstring, in order).  ``job_words`` maps each valid mode code to the
    words its job takes; ``width`` is the input word width."""
    tag = body[1] if len(body) >= 2 else 0
    if len(body) < MIN_REQUEST:
        return RequestCheck(Status.LENGTH, tag)
    if crc16(body) != 0:
        return RequestCheck(Status.CHECKSUM, tag)
    cmd, mode = body[0], body[2]
    (count,) = struct.unpack_from("<H", body, 3)
    payload = body[REQUEST_HEADER:-CRC_BYTES]
    if len(payload) != count * word_bytes(width):
        return RequestCheck(Status.LENGTH, tag, cmd, mode)
    if cmd not in set(Command):
        return RequestCheck(Status.COMMAND, tag, cmd, mode)
    if cmd == Command.JOB and mode not in job_words:
        return RequestCheck(Status.MODE, tag, cmd, mode)
    if count != (job_words[mode] if cmd == Command.JOB else 0):
        return RequestCheck(Status.LENGTH, tag, cmd, mode)
    return RequestCheck(Status.OK, tag, cmd, mode, payload)


def reply_body(status: int, tag: int, payload: bytes = b"") -> bytes:
    """A reply body including its CRC (what the board sends before stuffing)."""
    head = bytes((status, tag)) + struct.pack("<H", len(payload)) + payload
    return head + crc16(head).to_bytes(CRC_BYTES, "big")


@dataclass(frozen=True)
class Reply:
    status: Status
    tag: int
    payload: bytes

    @property
    def refused(self) -> int:
        """For an OVERFLOW reply: how many consecutive frames were refused."""
        if self.status != Status.OVERFLOW:
            raise ProtocolError(f"a {self.status.name} reply carries no refused count")
        return struct.unpack("<H", self.payload)[0]


class ReplyDecoder:
    """Sans-IO reply parser: ``feed(bytes)`` returns the :class:`Reply` objects completed
    by them; a body that breaks the reply format raises :class:`ProtocolError`."""

    def __init__(self):
        self._frames = Unstuffer()

    def feed(self, data: bytes) -> list[Reply]:
        return [self.parse(body) for body in self._frames.feed(data)]

    @property
    def pending(self) -> int:
        return self._frames.pending

    @staticmethod
    def parse(body: bytes) -> Reply:
        if len(body) < REPLY_HEADER + CRC_BYTES:
            raise ProtocolError(f"reply of {len(body)} bytes is shorter than a header and CRC")
        if crc16(body) != 0:
            raise ProtocolError(f"reply CRC mismatch (body {body[:8].hex()}..., "
                                f"{len(body)} bytes): the link corrupts data")
        status, tag = body[0], body[1]
        (length,) = struct.unpack_from("<H", body, 2)
        payload = body[REPLY_HEADER:-CRC_BYTES]
        if len(payload) != length:
            raise ProtocolError(f"reply says {length} payload bytes, carries {len(payload)}")
        try:
            status = Status(status)
        except ValueError:
            raise ProtocolError(f"unknown reply status {status}") from None
        return Reply(status, tag, payload)


# --------------------------------------------------------------------------
# The info reply


@dataclass(frozen=True)
class BoardInfo:
    """What the board says about itself (the ``INFO`` reply's payload).

    ``out_width`` and the fields after it describe the bitstream, not the
    artifact, so the host can only display them; the others must match the
    host's artifact (:meth:`mismatches`).
    """

    version: int
    digest: bytes           # first DIGEST_BYTES of the artifact's SHA-256
    input_dim: int
    latent_dim: int
    input_fmt: tuple[int, int]      # (width, frac)
    output_fmt: tuple[int, int]     # sigmoid output
    encode_fmt: tuple[int, int]     # head output (mu, logvar)
    out_width: int                  # bits of a reply word (core.out_width)
    lanes: tuple[int, ...]          # per layer
    clk_hz: int
    baud: int
    slots: int
    timeout_us: int

    @staticmethod
    def artifact_fields(artifact: Artifact) -> dict:
        """The fields ``artifact`` decides (the rest describe the bitstream)."""
        return {"version": VERSION,
                "digest": bytes.fromhex(artifact_digest(artifact))[:DIGEST_BYTES],
                "input_dim": artifact.input_dim, "latent_dim": artifact.latent_dim,
                "input_fmt": tuple(artifact.input_fmt.to_json()),
                "output_fmt": tuple(artifact.sigmoid.out_fmt.to_json()),
                "encode_fmt": tuple(artifact.mu_fmt.to_json())}

    @classmethod
    def for_artifact(cls, artifact: Artifact, **bitstream) -> "BoardInfo":
        """The info of a board running ``artifact``; ``bitstream`` gives the rest
        (``out_width``, ``lanes``, ``clk_hz``, ``baud``, ``slots``, ``timeout_us``)."""
        return cls(**cls.artifact_fields(artifact), **bitstream)

    def to_bytes(self) -> bytes:
        fmts = (*self.input_fmt, *self.output_fmt, *self.encode_fmt)
        return (struct.pack(f"<B{DIGEST_BYTES}sHHBbBbBbBB", self.version, self.digest,
                            self.input_dim, self.latent_dim, *fmts, self.out_width,
                            len(self.lanes))
                + struct.pack(f"<{len(self.lanes)}H", *self.lanes)
                + struct.pack("<IIBI", self.clk_hz, self.baud, self.slots, self.timeout_us))

    @classmethod
    def from_bytes(cls, data: bytes) -> "BoardInfo":
        head = struct.Struct(f"<B{DIGEST_BYTES}sHHBbBbBbBB")
        tail = struct.Struct("<IIBI")
        if len(data) < 1 or data[0] != VERSION:
            got = data[0] if data else "nothing"
            raise ProtocolError(f"board speaks protocol version {got}, this host {VERSION}: "
                                "rebuild the bitstream or update the host")
        if len(data) < head.size:
            raise ProtocolError(f"info reply of {len(data)} bytes is too short")
        (version, digest, input_dim, latent_dim, iw, ifr, ow, ofr, ew, efr, out_width,
         n_layers) = head.unpack_from(data)
        if len(data) != head.size + 2 * n_layers + tail.size:
            raise ProtocolError(f"info reply of {len(data)} bytes, expected "
                                f"{head.size + 2 * n_layers + tail.size} for {n_layers} layers")
        lanes = struct.unpack_from(f"<{n_layers}H", data, head.size)
        clk_hz, baud, slots, timeout_us = tail.unpack_from(data, head.size + 2 * n_layers)
        return cls(version, digest, input_dim, latent_dim, (iw, ifr), (ow, ofr), (ew, efr),
                   out_width, tuple(lanes), clk_hz, baud, slots, timeout_us)

    def mismatches(self, artifact: Artifact) -> list[str]:
        """``"field: board X, artifact Y"`` for every field ``artifact`` decides that differs."""
        return [f"{name}: board {_show(getattr(self, name))}, artifact {_show(value)}"
                for name, value in self.artifact_fields(artifact).items()
                if getattr(self, name) != value]

    def describe(self) -> str:
        return ", ".join(f"{f.name}={_show(getattr(self, f.name))}" for f in fields(self))

    def link_images_per_second(self, mode: str) -> float:
        """Images/s the UART link allows for ``mode`` at this board's baud (full
        duplex: the longer of the request and reply frames sets the pace; 10 bit
        times a byte; stuffing, 2/256 more bytes on random data, neglected)."""
        request = (REQUEST_HEADER + input_words(self, mode) * word_bytes(self.input_fmt[0])
                   + CRC_BYTES + 1)
        reply = (REPLY_HEADER + output_words(self, mode) * word_bytes(self.out_width)
                 + CRC_BYTES + 1)
        return self.baud / 10 / max(request, reply)


def _show(value) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)

