"""Deterministic generated audio for the simulator, streamed in chunks and never held whole in memory.

- WAV: 8 kHz, 16-bit PCM, mono or stereo, like Twilio's ``.wav`` media. The samples are a gentle melody on a
  pentatonic scale chosen by the recording's seed, so a person listening in the demo hears something pleasant;
  in stereo the second channel answers the first a little quieter (two parties of a call).
- MP3: a valid stream of silent MPEG-1 Layer III frames (32 kbit/s, 32 kHz, mono; 144 bytes per frame,
  all-zero side information). Any exact byte size is reached by a leading ID3v2 tag whose padding absorbs the
  remainder.

Both are built from small precomputed blocks (one 250 ms note, one MPEG frame) so a 500 MB body streams at
memory bounded by one chunk.
"""

from __future__ import annotations

import math
import random
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator
from functools import lru_cache

SAMPLE_RATE = 8000
BYTES_PER_SAMPLE = 2
WAV_HEADER_SIZE = 44
CHUNK_SIZE = 64 * 1024

_NOTE_SAMPLES = SAMPLE_RATE // 4  # 250 ms per note
_FADE_SAMPLES = 240  # 30 ms fade in/out: no clicks between notes
# C major pentatonic, C4..E5: any sequence of these sounds consonant.
_SCALE_HZ = (261.63, 293.66, 329.63, 392.00, 440.00, 523.25, 587.33, 659.25)
_REST = -1

MP3_FRAME_SIZE = 144  # 144 * 32000 bit/s / 32000 Hz, no padding
MP3_FRAME_SECONDS = 1152 / 32000
# Frame sync 0xFFE, MPEG-1, Layer III, no CRC | 32 kbit/s, 32 kHz, no padding | mono, original.
_MP3_HEADER = bytes((0xFF, 0xFB, 0x18, 0xC4))
_ID3_HEADER_SIZE = 10


# -- sizes ---------------------------------------------------------------------------------------------


def wav_size(*, duration_seconds: float, channels: int) -> int:
    """The byte size of a WAV of ``duration_seconds`` (rounded to whole samples)."""
    return WAV_HEADER_SIZE + round(duration_seconds * SAMPLE_RATE) * BYTES_PER_SAMPLE * channels


def wav_duration(*, size_bytes: int, channels: int) -> float:
    return (size_bytes - WAV_HEADER_SIZE) / (SAMPLE_RATE * BYTES_PER_SAMPLE * channels)


def mp3_size(duration_seconds: float) -> int:
    """The byte size of the silent MP3 the simulator serves for a recording of ``duration_seconds``."""
    return max(1, math.ceil(duration_seconds / MP3_FRAME_SECONDS)) * MP3_FRAME_SIZE


# -- WAV -----------------------------------------------------------------------------------------------


def wav_header(*, size_bytes: int, channels: int) -> bytes:
    if size_bytes < WAV_HEADER_SIZE:
        raise ValueError(f"a WAV file has at least {WAV_HEADER_SIZE} bytes")
    if channels not in (1, 2):
        raise ValueError("channels must be 1 or 2")
    block_align = BYTES_PER_SAMPLE * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        size_bytes - 8,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        SAMPLE_RATE,
        SAMPLE_RATE * block_align,
        block_align,
        BYTES_PER_SAMPLE * 8,
        b"data",
        size_bytes - WAV_HEADER_SIZE,
    )


def iter_wav(*, size_bytes: int, channels: int, seed: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Exactly ``size_bytes`` of WAV, in chunks of ``chunk_size`` (the last may be shorter)."""
    header = wav_header(size_bytes=size_bytes, channels=channels)
    blocks = _prepend(header, _note_blocks(seed=seed, channels=channels))
    return _rechunk(blocks, total=size_bytes, chunk_size=chunk_size)


def _note_blocks(*, seed: int, channels: int) -> Iterator[bytes]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible melody, not a secret
    note = rng.randrange(len(_SCALE_HZ))
    while True:
        # A phrase of a few notes walking the scale in small steps, then a short rest.
        for _ in range(rng.randint(3, 7)):
            yield _note_block(note, channels)
            note = min(len(_SCALE_HZ) - 1, max(0, note + rng.choice((-2, -1, 1, 1, 2))))
        yield _note_block(_REST, channels)


@lru_cache(maxsize=64)
def _note_block(note: int, channels: int) -> bytes:
    left = _tone(note, amplitude=0.30)
    if channels == 1:
        samples = left
    else:
        answer = _tone(_REST if note == _REST else (note + 2) % len(_SCALE_HZ), amplitude=0.18)
        samples = array("h", bytes(len(left) * 2 * BYTES_PER_SAMPLE))
        samples[0::2] = left
        samples[1::2] = answer
    if sys.byteorder == "big":  # WAV is little-endian
        samples.byteswap()
    return samples.tobytes()


def _tone(note: int, *, amplitude: float) -> array[int]:
    if note == _REST:
        return array("h", bytes(_NOTE_SAMPLES * BYTES_PER_SAMPLE))
    step = 2 * math.pi * _SCALE_HZ[note] / SAMPLE_RATE
    peak = amplitude * 32767
    values = array("h")
    for i in range(_NOTE_SAMPLES):
        envelope = min(1.0, i / _FADE_SAMPLES, (_NOTE_SAMPLES - 1 - i) / _FADE_SAMPLES)
        values.append(round(peak * envelope * math.sin(step * i)))
    return values


# -- MP3 -----------------------------------------------------------------------------------------------


def iter_mp3(*, size_bytes: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Exactly ``size_bytes`` of MP3 (silent frames, preceded by an ID3v2 tag unless the size is a whole
    number of frames), in chunks of ``chunk_size``."""
    remainder = size_bytes % MP3_FRAME_SIZE
    tag_size = 0
    if remainder:
        tag_size = remainder if remainder >= _ID3_HEADER_SIZE else remainder + MP3_FRAME_SIZE
    if size_bytes < tag_size or size_bytes <= 0:
        raise ValueError(f"no MP3 of exactly {size_bytes} bytes")
    frames = _repeat(_silent_frame())
    blocks = _prepend(_id3_tag(tag_size), frames) if tag_size else frames
    return _rechunk(blocks, total=size_bytes, chunk_size=chunk_size)


@lru_cache(maxsize=1)
def _silent_frame() -> bytes:
    return _MP3_HEADER + bytes(MP3_FRAME_SIZE - len(_MP3_HEADER))


def _id3_tag(size: int) -> bytes:
    """An empty ID3v2.3 tag of ``size`` bytes in total: header plus padding (allowed by ID3v2.3 §3.3)."""
    body = size - _ID3_HEADER_SIZE
    synchsafe = bytes(((body >> 21) & 0x7F, (body >> 14) & 0x7F, (body >> 7) & 0x7F, body & 0x7F))
    return b"ID3\x03\x00\x00" + synchsafe + bytes(body)


# -- plumbing ------------------------------------------------------------------------------------------


def _repeat(block: bytes) -> Iterator[bytes]:
    # Enough frames per block to keep the per-chunk Python overhead small.
    batch = block * max(1, CHUNK_SIZE // len(block))
    while True:
        yield batch


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _rechunk(blocks: Iterable[bytes], *, total: int, chunk_size: int) -> Iterator[bytes]:
    """Cut a stream of blocks into ``chunk_size`` pieces, stopping after exactly ``total`` bytes."""
    buffer = bytearray()
    remaining = total
    for block in blocks:
        if remaining <= 0:
            break
        piece = block[:remaining] if len(block) > remaining else block
        buffer += piece
        remaining -= len(piece)
        while len(buffer) >= chunk_size:
            yield bytes(buffer[:chunk_size])
            del buffer[:chunk_size]  # deleting from the front of a bytearray is amortised O(1)
    if buffer:
        yield bytes(buffer)
