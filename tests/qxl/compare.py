#!/usr/bin/python3
"""Pixel comparer for the QXL stand-in's dumps.

  compare.py diff A.ppm B.ppm [diff.png]   prints the number of differing pixels
                                           (or "missing"/"size WxH vs WxH"); writes a
                                           diff image when they differ: A | B | mask
  compare.py tiles A.ppm B.ppm COLSxROWS   prints "tile:pixels" for each grid tile that
                                           differs (nothing when none does)
  compare.py png IN.ppm OUT.png            converts a dump for viewing
"""
import sys

from PIL import Image, ImageChops


def load(path):
    try:
        return Image.open(path).convert("RGB")
    except (OSError, ValueError):
        return None


def diff(a_path, b_path, out=None):
    a, b = load(a_path), load(b_path)
    if a is None or b is None:
        print("missing")
        return 2
    if a.size != b.size:
        print("size %dx%d vs %dx%d" % (a.size + b.size))
        return 1
    d = ImageChops.difference(a, b)
    mask = d.convert("L").point(lambda v: 255 if v else 0)
    n = sum(1 for v in mask.getdata() if v)
    print(n)
    if n and out:
        w, h = a.size
        img = Image.new("RGB", (w * 3 + 8, h), (255, 0, 255))
        img.paste(a, (0, 0))
        img.paste(b, (w + 4, 0))
        img.paste(Image.merge("RGB", (mask, mask, mask)), (2 * w + 8, 0))
        img.save(out)
    return 1 if n else 0


def tiles(a_path, b_path, grid):
    a, b = load(a_path), load(b_path)
    if a is None or b is None:
        print("missing")
        return 2
    if a.size != b.size:
        print("size %dx%d vs %dx%d" % (a.size + b.size))
        return 1
    cols, rows = (int(v) for v in grid.split("x"))
    w, h = a.size
    tw, th = w // cols, h // rows
    bad = []
    for i in range(cols * rows):
        box = ((i % cols) * tw, (i // cols) * th, (i % cols + 1) * tw, (i // cols + 1) * th)
        d = ImageChops.difference(a.crop(box), b.crop(box)).convert("L")
        n = sum(1 for v in d.getdata() if v)
        if n:
            bad.append(f"{i}:{n}")
    print(" ".join(bad))
    return 1 if bad else 0


def main(argv):
    if len(argv) == 5 and argv[1] == "tiles":
        return tiles(argv[2], argv[3], argv[4])
    if len(argv) >= 4 and argv[1] == "diff":
        return diff(argv[2], argv[3], argv[4] if len(argv) > 4 else None)
    if len(argv) == 4 and argv[1] == "png":
        img = load(argv[2])
        if img is None:
            return 2
        img.save(argv[3])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
