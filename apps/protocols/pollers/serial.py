"""A serial line (RS-485 / RS-232 through a USB adapter) for the pollers, with pyserial: blocking
reads and writes run in a worker thread (``asyncio.to_thread``), each bounded by a timeout so that a
thread never outlives the transaction that started it.

DL/T 645-2007 meters usually talk 2400 baud 8E1 (DL/T 645-2007 clause 5.1: even parity); 1997 meters
1200 baud 8E1; Modbus RTU devices often 9600 8N1. The caller serialises transactions (one per bus)."""

from __future__ import annotations

import asyncio
import time

import serial as pyserial

TICK = 0.02  # seconds a blocking read waits before the deadline is checked again
PARITIES = {"N": pyserial.PARITY_NONE, "E": pyserial.PARITY_EVEN, "O": pyserial.PARITY_ODD,
            "M": pyserial.PARITY_MARK, "S": pyserial.PARITY_SPACE}


class SerialLine:
    """One serial port: ``open``, ``write``, ``read`` (what arrives within a timeout), ``discard`` stale
    input, ``close``. Errors are ``OSError`` (pyserial's ``SerialException`` is one)."""

    def __init__(self, port: str, *, baudrate: int = 2400, bytesize: int = 8, parity: str = "E",
                 stopbits: float = 1, write_timeout: float = 1.0):
        if parity.upper()[:1] not in PARITIES:
            raise ValueError(f"parity must be one of {', '.join(PARITIES)}, not {parity!r}")
        self.port, self.baudrate, self.bytesize = port, baudrate, bytesize
        self.parity, self.stopbits, self.write_timeout = PARITIES[parity.upper()[:1]], stopbits, write_timeout
        self.handle: pyserial.Serial | None = None

    @property
    def is_open(self) -> bool:
        return self.handle is not None and self.handle.is_open

    def _open(self) -> pyserial.Serial:
        try:
            return pyserial.Serial(self.port, baudrate=self.baudrate, bytesize=self.bytesize, parity=self.parity,
                                   stopbits=self.stopbits, timeout=TICK, write_timeout=self.write_timeout)
        except Exception as exc:  # termios.error (a line setting the tty refuses) is no OSError
            if isinstance(exc, OSError) or type(exc).__module__ == "termios":
                raise OSError(f"{self.port}: {exc}") from exc
            raise

    async def open(self) -> None:
        if not self.is_open:
            self.handle = await asyncio.to_thread(self._open)

    async def close(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            await asyncio.to_thread(handle.close)

    def discard(self) -> None:
        """Drop whatever is waiting in the input buffer (a late reply to an earlier request)."""
        if self.is_open:
            self.handle.reset_input_buffer()

    async def write(self, data: bytes) -> None:
        def _write() -> None:
            self.handle.write(data)
            self.handle.flush()
        await asyncio.to_thread(_write)

    async def read(self, timeout: float, size: int = 512) -> bytes:
        """The bytes that arrive within ``timeout`` seconds: returns as soon as some have come (and what
        followed them at once), or b"" when nothing came. The port keeps its short fixed read timeout
        (``TICK``), so reading never reconfigures the tty."""
        def _read() -> bytes:
            handle, deadline = self.handle, time.monotonic() + timeout
            while True:
                first = handle.read(1)
                if first:
                    return first + (handle.read(min(size - 1, handle.in_waiting)) if size > 1 else b"")
                if time.monotonic() >= deadline:
                    return b""
        return await asyncio.to_thread(_read)
