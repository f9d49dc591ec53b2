#!/usr/bin/env python3
"""Writes the image test corpus with Pillow as the independent encoder and decoder.

    /usr/bin/python3 Tests/Fixtures/data/make_image_corpus.py OUT_DIR

OUT_DIR/<name>.<ext> are the files; OUT_DIR/<name>.rgb is Pillow's decode of each good file as
8-bit RGB rows (what pilot's ImageDecoder must give back), composited the way pilot documents:
- PNG with alpha (RGBA, LA, palette or gray with tRNS): round((c*a + bg*(255-a)) / 255) on black;
- 16-bit gray (Pillow mode I): the high byte;
- JPEG: ImageOps.exif_transpose, then convert("RGB") (CMYK as Pillow converts it).
OUT_DIR/corpus.json lists every file: name, file, kind (good/bad), format, width, height, and for bad
files the words the error must contain. The Swift test (ImageCorpusTests) runs this script itself.
Needs Pillow (Debian: python3-pil, installed by scripts/bootstrap.sh) and numpy.
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(16)
entries = []


def smooth(w, h, c=3):
    """A photo-like image: gradients plus a few shapes plus mild noise (JPEG-friendly)."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 / max(1, w - 1)), (y * 255 / max(1, h - 1)), ((x + y) * 127 / max(1, w + h - 2))], -1)
    base[h // 4: h // 2, w // 5: w // 2] = [220, 40, 30]
    base[h // 2: 3 * h // 4, w // 2: 4 * w // 5] = [30, 60, 200]
    base += rng.normal(0, 6, base.shape)
    a = np.clip(base, 0, 255).astype(np.uint8)
    return a if c == 3 else a[..., 0]


def composite(rgba, bg=(0, 0, 0)):
    c = rgba[..., :3].astype(np.int64)
    a = rgba[..., 3:4].astype(np.int64)
    b = np.array(bg, dtype=np.int64)
    return ((c * a + b * (255 - a) + 127) // 255).astype(np.uint8)


def expected_rgb(path):
    im = Image.open(path)
    if im.format == "JPEG":
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    if im.mode in ("I", "I;16", "I;16B"):
        a = (np.asarray(im).astype(np.int64) >> 8).astype(np.uint8)
        return np.stack([a, a, a], -1)
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        return composite(np.asarray(im.convert("RGBA")))
    return np.asarray(im.convert("RGB"))


def good(name, ext, save, close=False):
    path = os.path.join(out, f"{name}.{ext}")
    save(path)
    rgb = expected_rgb(path)
    rgb.tofile(os.path.join(out, f"{name}.rgb"))
    entries.append({"name": name, "file": f"{name}.{ext}", "kind": "good", "format": Image.open(path).format.lower(),
                    "width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "tolerance": "jpeg" if close else "exact"})


def bad(name, ext, data, needles):
    with open(os.path.join(out, f"{name}.{ext}"), "wb") as f:
        f.write(data)
    entries.append({"name": name, "file": f"{name}.{ext}", "kind": "bad", "needles": needles})


# PNG: every mode Pillow writes.
good("png_rgb", "png", lambda p: Image.fromarray(smooth(57, 33)).save(p))
rgba = np.dstack([smooth(40, 30), rng.integers(0, 256, (30, 40), dtype=np.uint8)])
good("png_rgba", "png", lambda p: Image.fromarray(rgba, "RGBA").save(p))
good("png_gray", "png", lambda p: Image.fromarray(smooth(31, 45, 1), "L").save(p))
la = np.dstack([smooth(20, 24, 1), rng.integers(0, 256, (24, 20), dtype=np.uint8)])
good("png_gray_alpha", "png", lambda p: Image.fromarray(la, "LA").save(p))
pal = Image.fromarray(smooth(48, 36)).quantize(colors=40, dither=Image.Dither.NONE)
good("png_palette", "png", lambda p: pal.save(p))
good("png_palette_trns", "png", lambda p: pal.save(p, transparency=3))
g16 = (rng.integers(0, 65536, (17, 23))).astype(np.uint16)
good("png_gray16", "png", lambda p: Image.fromarray(g16, "I;16").save(p))
bw = Image.fromarray((smooth(29, 19, 1) > 128).astype(np.uint8) * 255, "L").convert("1")
good("png_1bit", "png", lambda p: bw.save(p))
good("png_gray_trns", "png", lambda p: Image.fromarray(smooth(16, 16, 1), "L").save(p, transparency=200))
good("png_large", "png", lambda p: Image.fromarray(smooth(320, 240)).save(p, optimize=True))

# JPEG: baseline 4:2:0 and 4:4:4, progressive, gray, CMYK, EXIF orientations, restart markers.
photo = Image.fromarray(smooth(320, 240))
good("jpeg_420", "jpg", lambda p: photo.save(p, quality=90), close=True)
good("jpeg_444", "jpg", lambda p: photo.save(p, quality=95, subsampling=0), close=True)
good("jpeg_progressive", "jpg", lambda p: photo.save(p, quality=85, progressive=True), close=True)
good("jpeg_gray", "jpg", lambda p: Image.fromarray(smooth(33, 57, 1), "L").save(p, quality=90), close=True)
good("jpeg_cmyk", "jpg", lambda p: Image.fromarray(smooth(40, 28)).convert("CMYK").save(p, quality=92), close=True)
small = Image.fromarray(smooth(48, 32))
for o in (3, 6, 8):
    def save(p, o=o):
        exif = Image.Exif()
        exif[0x0112] = o
        small.save(p, quality=92, exif=exif.tobytes())
    good(f"jpeg_exif{o}", "jpg", save, close=True)
good("jpeg_odd_size", "jpg", lambda p: Image.fromarray(smooth(33, 57)).save(p, quality=90), close=True)

# Files whose extension lies: decoded by content.
good("lies_png_named_jpg", "jpg", lambda p: Image.fromarray(smooth(21, 13)).save(p, format="PNG"))
good("lies_jpeg_named_png", "png", lambda p: Image.fromarray(smooth(21, 13)).save(p, format="JPEG", quality=90), close=True)

# Failures.
buf = io.BytesIO(); photo.save(buf, format="JPEG", quality=90); jpeg = buf.getvalue()
bad("bad_truncated_jpeg", "jpg", jpeg[: len(jpeg) // 2], ["JPEG", "truncated"])
buf = io.BytesIO(); photo.save(buf, format="PNG"); png = buf.getvalue()
bad("bad_truncated_png", "png", png[: len(png) // 2], ["PNG", "truncated"])
bad("bad_text_named_jpg", "jpg", b"this is not an image at all\n", ["not a PNG or JPEG", "text file"])
buf = io.BytesIO(); Image.fromarray(smooth(8, 8)).save(buf, format="GIF"); gif = buf.getvalue()
bad("bad_gif", "png", gif, ["GIF"])


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


bomb_png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)) + \
    chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
bad("bad_bomb_png", "png", bomb_png, ["60000x60000", "limit"])
# A JPEG whose SOF0 declares 60000 x 60000 (the scan data is a small image's).
i = jpeg.index(b"\xff\xc0")
bomb_jpeg = jpeg[: i + 5] + struct.pack(">HH", 60000, 60000) + jpeg[i + 9:]
bad("bad_bomb_jpeg", "jpg", bomb_jpeg, ["60000x60000", "limit"])
bad("bad_empty", "png", b"", ["empty file"])

with open(os.path.join(out, "corpus.json"), "w") as f:
    json.dump(entries, f, indent=1)
print(f"wrote {len(entries)} files to {out}")
