"""hw.protocol: CRC, words, framing, the board's checks and the info reply (pure Python)."""

from __future__ import annotations

import binascii
import functools
import random
import struct

import numpy as np
import pytest

from hw.protocol import (
    CRC_BYTES, ESC, FLAG, MIN_REQUEST, BoardInfo, Command, ProtocolError, Reply, ReplyDecoder,
    RequestCheck,
    Status, check_request, crc16, crc16_taps, crc16_update, decode_words, encode_words,
    info_frame, input_words, job_frame, output_words, reply_body, request_body, reset_frame,
    seal, stuff, Unstuffer, word_bytes,
)
from model.random_artifact import random_artifact

JOB_WORDS = {0: 4, 1: 4, 2: 0, 3: 4}   # IRIS: input_dim 4, generate takes none


def parity(x: int) -> int:
    return bin(x).count("1") & 1


def test_crc_is_ccitt_false_and_matches_the_bitwise_definition():
    assert crc16(b"123456789") == 0x29B1          # the catalogue's check value
    rng = random.Random(0)
    for n in (0, 1, 7, 100):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert functools.reduce(crc16_update, data, 0xFFFF) == crc16(data) \
            == binascii.crc_hqx(data, 0xFFFF)
        # big-endian CRC appended: the residue over the whole body is 0
        assert crc16(data + crc16(data).to_bytes(2, "big")) == 0


def test_crc_taps_are_the_update_matrix():
    taps = crc16_taps()
    rng = random.Random(1)
    for _ in range(500):
        crc, byte = rng.randrange(1 << 16), rng.randrange(256)
        bits = [parity(crc & cm) ^ parity(byte & bm) for cm, bm in taps]
        assert sum(b << i for i, b in enumerate(bits)) == crc16_update(crc, byte)


def test_words_round_trip_and_range():
    for width in (1, 8, 9, 16, 17):
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        values = np.array([lo, hi, 0, -1 if width > 1 else 0, lo // 2])
        raw = encode_words(values, width)
        assert len(raw) == values.size * word_bytes(width)
        assert decode_words(raw, width).tolist() == values.tolist()
    assert encode_words([-2, 255], 9) == bytes([0xFE, 0xFF, 0xFF, 0x00])
    with pytest.raises(ValueError, match=r"outside a signed 9-bit range \[-256, 255\]"):
        encode_words([256], 9)
    with pytest.raises(ProtocolError, match="not a whole number of 2-byte words"):
        decode_words(b"\x00\x01\x02", 16)


def test_stuffing_round_trip_in_chunks():
    rng = random.Random(2)
    bodies = [bytes(rng.choice([FLAG, ESC, 0x5E, 0x5D, 0x00, rng.randrange(256)])
                    for _ in range(rng.randrange(1, 40))) for _ in range(50)]
    wire = b"".join(stuff(b) for b in bodies)
    assert wire.count(FLAG) == len(bodies)       # a FLAG only ever ends a frame
    un = Unstuffer()
    got = []
    k = 0
    while k < len(wire):
        step = rng.randrange(1, 9)
        got += un.feed(wire[k:k + step])
        k += step
    assert got == bodies and un.pending == 0
    assert Unstuffer().feed(bytes([FLAG, FLAG, 1, FLAG])) == [b"\x01"]   # fill ignored


def _check(body):
    return check_request(body, width=9, job_words=JOB_WORDS)


def _crc(body):
    return body + crc16(body).to_bytes(CRC_BYTES, "big")


def test_check_request_accepts_well_formed_frames():
    words = encode_words([1, -2, 3, 255], 9)
    ok = _check(_crc(request_body(Command.JOB, 7, 1, 4, words)))
    assert (ok.status, ok.tag, ok.cmd, ok.mode, ok.words) == (Status.OK, 7, Command.JOB, 1, words)
    assert _check(_crc(request_body(Command.JOB, 8, 2, 0))).status == Status.OK
    assert _check(_crc(request_body(Command.INFO, 9))).status == Status.OK
    assert _check(_crc(request_body(Command.RESET, 10, 3))).status == Status.OK  # mode ignored


@pytest.mark.parametrize("body,status", [
    (b"\x02", Status.LENGTH),                                           # runt, no tag
    (b"\x02\x05\x00\x04\x00\x00", Status.LENGTH),                       # shorter than header+CRC
    (request_body(Command.JOB, 5, 0, 4, bytes(8)) + b"\x00\x00", Status.CHECKSUM),
    (_crc(request_body(Command.JOB, 5, 0, 4, bytes(6))), Status.LENGTH),  # fewer words than COUNT
    (_crc(request_body(Command.JOB, 5, 0, 3, bytes(8))), Status.LENGTH),  # more
    (_crc(request_body(9, 5, 0, 0)), Status.COMMAND),
    (_crc(request_body(0, 5, 0, 0)), Status.COMMAND),
    (_crc(request_body(Command.JOB, 5, 4, 4, bytes(8))), Status.MODE),
    (_crc(request_body(Command.JOB, 5, 0, 3, bytes(6))), Status.LENGTH),  # consistent, wrong
    (_crc(request_body(Command.JOB, 5, 2, 4, bytes(8))), Status.LENGTH),  # generate takes none
    (_crc(request_body(Command.INFO, 5, 0, 1, bytes(2))), Status.LENGTH),
])
def test_check_request_errors_in_order(body, status):
    got = _check(body)
    assert got.status == status
    assert got.tag == (body[1] if len(body) > 1 else 0)


def test_check_request_precedence():
    # A bad CRC hides everything after it; a wrong length hides an unknown command.
    assert _check(request_body(9, 1, 9, 0) + b"\x00\x00").status == Status.CHECKSUM
    assert _check(_crc(request_body(9, 1, 9, 1))).status == Status.LENGTH
    assert _check(_crc(request_body(Command.JOB, 1, 9, 1, bytes(2)))).status == Status.MODE


def test_frames_are_sealed_requests():
    art = random_artifact("iris")
    width = art.input_fmt.width
    x = [1, 2, 3, -256]
    frame = job_frame(3, "encode", x, width)
    (body,) = Unstuffer().feed(frame)
    got = check_request(body, width=width, job_words=JOB_WORDS)
    assert got.status == Status.OK and decode_words(got.words, width).tolist() == x
    for make, cmd in ((info_frame, Command.INFO), (reset_frame, Command.RESET)):
        (body,) = Unstuffer().feed(make(0x7E))           # a tag that needs stuffing
        assert check_request(body, width=width, job_words=JOB_WORDS) == \
            RequestCheck(Status.OK, 0x7E, cmd)
        assert len(body) == MIN_REQUEST
    with pytest.raises(ValueError, match="mode must be one of"):
        job_frame(0, "decode", x, width)
    assert input_words(art, "generate") == 0 and output_words(art, "encode") == 4


def test_reply_decoder():
    dec = ReplyDecoder()
    wire = stuff(reply_body(Status.OK, 0x7D, bytes([FLAG, ESC, 1]))) + \
        stuff(reply_body(Status.OVERFLOW, 3, struct.pack("<H", 5)))
    got = dec.feed(wire[:5]) + dec.feed(wire[5:])
    assert got == [Reply(Status.OK, 0x7D, bytes([FLAG, ESC, 1])),
                   Reply(Status.OVERFLOW, 3, b"\x05\x00")]
    assert got[1].refused == 5
    with pytest.raises(ProtocolError, match="no refused count"):
        got[0].refused
    bad = bytearray(reply_body(Status.OK, 1, b"\x01\x02"))
    bad[4] ^= 1
    with pytest.raises(ProtocolError, match="CRC mismatch"):
        ReplyDecoder().feed(stuff(bytes(bad)))
    head = bytes([0, 1]) + struct.pack("<H", 3) + b"\x01"
    with pytest.raises(ProtocolError, match="says 3 payload bytes, carries 1"):
        ReplyDecoder().feed(stuff(_crc(head)))
    with pytest.raises(ProtocolError, match="unknown reply status 9"):
        ReplyDecoder().feed(stuff(_crc(bytes([9, 1, 0, 0]))))
    with pytest.raises(ProtocolError, match="shorter than a header"):
        ReplyDecoder().feed(stuff(b"\x00\x01"))


def _info(art, **over):
    bits = dict(out_width=16, lanes=(2, 2, 2, 2), clk_hz=48_000_000, baud=3_000_000, slots=2,
                timeout_us=20_000)
    bits.update(over)
    return BoardInfo.for_artifact(art, **bits)


def test_board_info_round_trip_and_mismatches():
    art = random_artifact("iris")
    info = _info(art)
    assert BoardInfo.from_bytes(info.to_bytes()) == info
    assert info.mismatches(art) == []
    problems = info.mismatches(random_artifact("iris", seed=5))
    assert len(problems) == 1 and problems[0].startswith("digest: board ")
    names = [p.split(":")[0] for p in _info(random_artifact("mnist")).mismatches(art)]
    assert names == ["digest", "input_dim", "latent_dim"]
    with pytest.raises(ProtocolError, match="protocol version 9, this host 1"):
        BoardInfo.from_bytes(b"\x09" + info.to_bytes()[1:])
    with pytest.raises(ProtocolError, match="expected"):
        BoardInfo.from_bytes(info.to_bytes() + b"\x00")
    # IRIS at 3 Mbaud: 16-byte requests, 16-byte replies -> 18,750 images/s
    assert info.link_images_per_second("recon_mu") == pytest.approx(3e6 / 10 / 16)
