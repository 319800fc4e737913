"""Identifier checks shared by several apps."""

from __future__ import annotations

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_FULLWIDTH = {ord(c): ord(c) - 0xFEE0 for c in "０１２３４５６７８９ＡＢＣＤＥＦＧＨＪＫＬＭＮＰＱＲＴＵＷＸＹ"}


def normalize_uscc(code: str) -> str:
    return code.translate(_FULLWIDTH).replace(" ", "").replace("\u3000", "").strip().upper()


def uscc_is_valid(code: str) -> bool:
    """Unified social credit code, GB 32100-2015: 18 characters of a 31-letter alphabet (no I O Z S V),
    weights 3^(i-1) mod 31, check character (31 - sum mod 31) mod 31. Letters are allowed in the first
    eight positions (python-stdnum wrongly refuses them)."""
    code = normalize_uscc(code)
    if len(code) != 18 or any(c not in USCC_CHARS for c in code):
        return False
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(code[:17], USCC_WEIGHTS))
    return USCC_CHARS[(31 - total % 31) % 31] == code[17]


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17.upper(), USCC_WEIGHTS))
    return USCC_CHARS[(31 - total % 31) % 31]


def validate_uscc(value: str) -> None:
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    if value and not uscc_is_valid(value):
        raise ValidationError(
            _("%(value)s is not a valid unified social credit code (GB 32100-2015: 18 characters, "
              "check character must match)."), params={"value": value}, code="uscc")
