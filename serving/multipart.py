"""Multipart uploads whose part headers are not UTF-8: a file name sent as Latin-1 is still just a name.

werkzeug decodes each part's headers as UTF-8 and, on any other byte, silently drops the whole form, so a
photo named ``café.jpg`` by a Latin-1 client arrived as "missing image". Decoding such headers as Latin-1
(every byte sequence is valid Latin-1) keeps the upload; only the file name's characters may differ.
"""

from __future__ import annotations

import werkzeug.formparser
from werkzeug.datastructures import Headers
from werkzeug.sansio.multipart import MultipartDecoder


class LenientMultipartDecoder(MultipartDecoder):
    """werkzeug's decoder, with part headers that are not UTF-8 read as Latin-1."""

    def _parse_headers(self, data: bytes | bytearray) -> Headers:
        try:
            return super()._parse_headers(data)
        except UnicodeDecodeError:
            return super()._parse_headers(bytes(data).decode("latin-1").encode())


def accept_latin1_part_headers() -> None:
    """Make werkzeug's form parser use :class:`LenientMultipartDecoder` (it looks the class up by name)."""
    werkzeug.formparser.MultipartDecoder = LenientMultipartDecoder
