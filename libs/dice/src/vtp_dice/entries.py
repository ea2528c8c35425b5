"""Zip entry names and what the central directory alone shows wrong with an entry.

Names are decoded as the uploader meant them, escaped before they are shown, and checked
for escapes out of the archive, links, encryption, unknown methods and zip bombs.
"""

from __future__ import annotations

import re
import stat
import zipfile

from vtp_dice.format import Problem
from vtp_dice.limits import ArchiveLimits

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_JUNK_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc: C0, DEL and C1


def entry_name(info: zipfile.ZipInfo) -> str:
    """The name the uploader meant.

    Without the UTF-8 flag zipfile decodes names as cp437, but many tools write
    UTF-8 without setting it: take the raw bytes as UTF-8 when they are valid
    UTF-8 (real cp437 text with high bytes rarely is), else keep cp437.
    `orig_filename` is used because zipfile truncates `filename` at a NUL.
    """
    if info.flag_bits & _UTF8_FLAG or info.orig_filename.isascii():
        return info.orig_filename
    try:
        return info.orig_filename.encode("cp437").decode("utf-8")
    except UnicodeDecodeError:
        return info.orig_filename


def display_name(name: str) -> str:
    """`name` with control characters escaped, safe to show in a UI or a log."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)


def entry_problems(info: zipfile.ZipInfo, name: str, limits: ArchiveLimits) -> list[Problem]:
    """Problems visible from the central directory alone."""
    found: list[tuple[str, str]] = []
    if _CONTROL.search(name):
        found.append(("invalid_entry_name", "entry name contains control characters"))
    path = name.replace("\\", "/")  # an extractor on Windows treats `\` as a separator
    if path.startswith("/") or _DRIVE.match(path) or ".." in path.split("/"):
        found.append(("zip_slip", "entry name escapes the archive (absolute, drive letter or '..')"))
    if stat.S_ISLNK(info.external_attr >> 16):
        found.append(("zip_symlink", "symbolic links are not allowed"))
    if info.flag_bits & _ENCRYPTED_FLAG:
        found.append(("encrypted_entry", "encrypted entries are not allowed"))
    elif info.compress_type not in _METHODS:
        found.append(("unsupported_compression", f"compression method {info.compress_type}"))
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_min_size and ratio > limits.max_compression_ratio:
        found.append(("compression_ratio_exceeded", f"compression ratio {ratio:.0f} is suspicious"))
    return [Problem(code, message, display_name(name)) for code, message in found]


def is_junk(path: str) -> bool:
    """An OS leftover (__MACOSX, .DS_Store, Thumbs.db, desktop.ini): dropped without a problem."""
    parts = path.split("/")
    return "__MACOSX" in parts or parts[-1] in _JUNK_FILES
