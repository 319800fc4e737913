"""The CRC of HJ 212-2017 Appendix A."""

from __future__ import annotations

# --- CRC (Appendix A) ---------------------------------------------------------------------------

def _crc_table() -> list[int]:
    table = []
    for b in range(256):
        reg = b
        for _ in range(8):
            reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
        table.append(reg)
    return table


_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """The CRC of HJ 212-2017 Appendix A over the data segment bytes (not a standard CRC-16 preset):
    start 0xFFFF; for each byte, reg = (reg >> 8) ^ byte, then 8 reflected shifts with 0xA001."""
    reg = 0xFFFF
    for b in data:
        reg = (reg >> 8) ^ b
        reg = _TABLE[reg & 0xFF] ^ (reg >> 8)
    return reg


def crc_hex(data: bytes) -> str:
    """The CRC as sent: 4 upper-case hex digits, high byte first (Appendix A)."""
    return f"{crc16(data):04X}"
