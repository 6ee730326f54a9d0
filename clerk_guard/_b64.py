"""base64url, the one place it is decoded: strictly for what is verified, leniently for what is
only looked at (choosing between two cookies, showing a token in the doctor)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from typing import Any

__all__ = ["canonical", "decode", "peek_json"]

_VALUE = {
    char: value
    for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
#: By segment length mod 4, the low bits of the last character that carry no data.
_UNUSED_BITS = (0, 0, 0b1111, 0b11)
# "-" and "_" become the standard alphabet's "+" and "/"; "+", "/" and "=", which base64url
# segments never hold, become "!", which the strict decoder refuses. bytes.translate is several
# times str.translate's speed.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
#: By length mod 4; a length of 1 mod 4 is no base64 at all, and the decoder refuses it.
_PADDING = (b"", b"", b"==", b"=")
# Called as a2b_base64(text, strict_mode=True): a functools.partial with a keyword argument would
# build a dict on every call.
if sys.version_info >= (3, 11):
    _a2b_base64 = binascii.a2b_base64

else:  # pragma: no cover - Python 3.10 has no strict mode: check the alphabet first

    def _a2b_base64(text: bytes, *, strict_mode: bool = False) -> bytes:
        if strict_mode and _STANDARD.fullmatch(text) is None:
            raise binascii.Error("not base64")
        return binascii.a2b_base64(text)

    _STANDARD = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def decode(segment: str) -> bytes:
    """Decode an unpadded base64url segment, strictly: no padding, no other alphabet, nothing
    else. (Python's decoder accepts unused low bits set: see :func:`canonical`.)

    :raises binascii.Error: not unpadded base64url. :raises ValueError: non-ASCII characters.
    """
    return _a2b_base64(
        segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[len(segment) % 4],
        strict_mode=True,
    )


def canonical(segment: str) -> bool:
    """Whether a base64url segment's last character leaves its unused low bits clear: else
    another spelling decodes to the same bytes (``@clerk/backend``'s decoder refuses it too)."""
    length = len(segment)
    return not (length and _UNUSED_BITS[length % 4] & _VALUE.get(segment[-1], 0))


def peek_json(segment: str) -> Any:
    """A JWT segment's JSON, decoded leniently and trusted for nothing: padding optional.

    :raises ValueError: not base64url (``binascii.Error``) or not JSON.
    :raises RecursionError: JSON nested too deep.
    """
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return json.loads(raw)
