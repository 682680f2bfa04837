"""A byte stream that releases its file or HTTP body when closed, exhausted or dropped."""

from __future__ import annotations

from collections.abc import Callable, Iterator


class ClosingStream(Iterator[bytes]):
    """Iterate ``chunks``; call ``close`` exactly once: at the end, on :meth:`close`, or when garbage
    collected. Web frameworks may stop iterating half-way (a client that seeks or hangs up) or never start;
    either way the file handle or the S3 connection is released instead of leaking."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._close: Callable[[], None] | None = close

    def __iter__(self) -> ClosingStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()

    def __del__(self) -> None:
        self.close()
