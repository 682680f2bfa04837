"""The simulator's generated audio: valid, exact in size, deterministic, audible, and streamed."""

from __future__ import annotations

import io
import wave
from array import array

import pytest

from callvault.twilio.simulator import audio


def wav_bytes(size: int, channels: int = 1, seed: int = 1) -> bytes:
    return b"".join(audio.iter_wav(size_bytes=size, channels=channels, seed=seed))


@pytest.mark.parametrize("channels", [1, 2])
def test_wav_is_8khz_16bit_pcm_with_the_requested_duration(channels):
    size = audio.wav_size(duration_seconds=3, channels=channels)
    with wave.open(io.BytesIO(wav_bytes(size, channels))) as reader:
        assert (reader.getnchannels(), reader.getframerate(), reader.getsampwidth()) == (channels, 8000, 2)
        assert reader.getnframes() == 3 * 8000


@pytest.mark.parametrize("size", [44, 45, 1000, 65_536, 65_537, 200_003])
def test_wav_has_exactly_the_requested_size_in_any_chunking(size):
    whole = wav_bytes(size)
    assert len(whole) == size
    assert b"".join(audio.iter_wav(size_bytes=size, channels=1, seed=1, chunk_size=777)) == whole


def test_wav_chunks_are_bounded():
    sizes = [len(chunk) for chunk in audio.iter_wav(size_bytes=1_000_000, channels=2, seed=3)]
    assert max(sizes) == audio.CHUNK_SIZE and sum(sizes) == 1_000_000


def test_wav_is_deterministic_per_seed_and_differs_between_seeds():
    assert wav_bytes(50_000, seed=7) == wav_bytes(50_000, seed=7)
    assert wav_bytes(50_000, seed=7) != wav_bytes(50_000, seed=8)


def test_wav_is_audible_but_not_clipped():
    samples = array("h", wav_bytes(audio.wav_size(duration_seconds=2, channels=1))[44:])
    loudest = max(abs(value) for value in samples)
    assert 3000 < loudest < 32767


def test_stereo_channels_carry_different_signals():
    samples = array("h", wav_bytes(audio.wav_size(duration_seconds=1, channels=2), channels=2)[44:])
    assert samples[0::2] != samples[1::2]


def test_wav_smaller_than_its_header_is_refused():
    with pytest.raises(ValueError):
        wav_bytes(43)


def frames_after_tag(data: bytes) -> bytes:
    if data[:3] != b"ID3":
        return data
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return data[10 + size :]


@pytest.mark.parametrize("size", [144, 154, 150, 288 * 100 + 77, 1_000_003])
def test_mp3_is_size_exact_silent_frames(size):
    data = b"".join(audio.iter_mp3(size_bytes=size))
    assert len(data) == size
    frames = frames_after_tag(data)
    assert len(frames) % audio.MP3_FRAME_SIZE == 0
    for start in range(0, len(frames), audio.MP3_FRAME_SIZE):
        frame = frames[start : start + audio.MP3_FRAME_SIZE]
        assert frame[:4] == b"\xff\xfb\x18\xc4"  # sync, MPEG-1 Layer III, 32 kbit/s, 32 kHz, mono
        assert frame[4:] == bytes(audio.MP3_FRAME_SIZE - 4)  # zero side info and main data: silence


def test_mp3_size_follows_the_duration():
    assert audio.mp3_size(0.036) == audio.MP3_FRAME_SIZE
    assert audio.mp3_size(10) == 278 * audio.MP3_FRAME_SIZE  # ceil(10 / 0.036)
