"""What a downloaded file is, from its first bytes, and the file extension of a media type.

A URL's Content-Type is the server's word; the first bytes are the file's. Fetched media is kept
only when the two agree with the type the caller declared, so an HTML page or a script is never
stored as an "image" (and later served from our bucket under that name)."""
from __future__ import annotations

EXTENSIONS = {
    "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "image/avif": "avif",
    "image/heic": "heic", "image/svg+xml": "svg", "image/bmp": "bmp", "image/tiff": "tiff",
    "video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov", "video/x-matroska": "mkv",
    "video/mpeg": "mpg", "video/ogg": "ogv", "video/3gpp": "3gp", "video/x-msvideo": "avi",
}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
           "video/x-m4v": "video/mp4", "video/mov": "video/quicktime"}
GENERIC = ("", "application/octet-stream", "binary/octet-stream", "application/binary")


def normalize(mime: str) -> str:
    base = mime.split(";")[0].strip().lower()
    return ALIASES.get(base, base)


def extension(mime: str) -> str:
    """A file extension for share links (`bin` when the type has no usual one)."""
    mime = normalize(mime)
    if mime in EXTENSIONS:
        return EXTENSIONS[mime]
    sub = "".join(c for c in mime.split("/")[-1].split("+")[0] if c.isalnum())[:10]
    return sub or "bin"


def sniff(data: bytes) -> str | None:
    """The media type the bytes are, for the formats image and video providers return."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand.startswith(b"3g"):
            return "video/3gpp"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in data[:4096] else "video/x-matroska"
    if head.startswith(b"OggS"):
        return "video/ogg"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "video/mpeg"
    return None


def media_type(declared_type: str, declared_mime: str | None, header: str, data: bytes) -> str:
    """The stored file's media type, or ValueError saying why the download is not acceptable.
    `header` is the response's Content-Type; the bytes must be of a known `declared_type` format
    (SVG is refused: it is a document that can carry scripts)."""
    found = sniff(data)
    served = normalize(header)
    if found is None:
        raise ValueError(f"the file is not an {declared_type} of a known format (served as {served or 'untyped'})")
    if not found.startswith(declared_type + "/"):
        raise ValueError(f"the file is {found}, not an {declared_type}")
    if served not in GENERIC and served != found and not (served.startswith(declared_type + "/")
                                                          and found == "video/mp4" and served == "video/quicktime"):
        raise ValueError(f"the server says {served} but the file is {found}")
    if declared_mime and normalize(declared_mime) != found:
        raise ValueError(f"mimeType {declared_mime} was declared but the file is {found}")
    return found
