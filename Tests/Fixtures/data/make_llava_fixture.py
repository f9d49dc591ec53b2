#!/usr/bin/env python3
"""Writes a small LLaVA data set as a new user would bring it, for the end-to-end test of
`pilot data scenario` (ScenarioCLITests). Pillow writes the images.

    /usr/bin/python3 Tests/Fixtures/data/make_llava_fixture.py OUT_DIR

OUT_DIR/images/: 180 images, half JPEG and half PNG, 33x57 up to 320x240, in RGB, RGBA, gray and
palette modes (some progressive JPEGs). OUT_DIR/colors.json (60 records, 10 references each,
scored with vqa_accuracy), docs.json (60 records, a word written in the image, anls) and
shapes.json (60 records, a third of them two-turn conversations, exact_match). Everyday words:
orange, pink, hexagon, colour.
"""
import json
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

out = sys.argv[1]
os.makedirs(os.path.join(out, "images"), exist_ok=True)
rng = np.random.default_rng(7)
colours = {"orange": (255, 140, 0), "pink": (255, 105, 180), "teal": (0, 128, 128), "navy": (0, 0, 128),
           "olive": (128, 128, 0), "maroon": (128, 0, 0)}
shapes = ["hexagon", "circle", "square", "triangle"]
sizes = [(33, 57), (64, 48), (120, 90), (200, 150), (320, 240), (57, 33), (96, 96)]
modes = ["RGB", "RGBA", "L", "P"]
words = ["exit", "open", "stop", "cafe", "bank", "park", "taxi", "hotel"]


def save(i, img, kind):
    mode = modes[i % len(modes)]
    if mode == "RGBA":
        img = img.convert("RGBA")
        a = np.full((img.height, img.width), 255, np.uint8)
        a[: img.height // 6] = 128
        img.putalpha(Image.fromarray(a))
    elif mode == "L":
        img = img.convert("L")
    elif mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    if i % 2 == 0:
        name = f"{kind}{i:03d}.jpg"
        if img.mode in ("RGBA", "P"):
            img = img.convert("RGB")
        img.save(os.path.join(out, "images", name), quality=90, progressive=(i % 4 == 0))
    else:
        name = f"{kind}{i:03d}.png"
        img.save(os.path.join(out, "images", name))
    return name


def canvas(i):
    w, h = sizes[i % len(sizes)]
    bg = tuple(int(v) for v in rng.integers(20, 90, 3))
    return Image.new("RGB", (w, h), bg), w, h


records = {"colors": [], "docs": [], "shapes": []}
names = list(colours)
for i in range(60):
    img, w, h = canvas(i)
    c = names[i % len(names)]
    ImageDraw.Draw(img).rectangle([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=colours[c])
    refs = [c] * 8 + [names[(i + 1) % len(names)], "a " + c]
    records["colors"].append({"id": f"col-{i}", "image": save(i, img, "col"),
                              "conversations": [{"from": "human", "value": "<image>\nWhat colour is the box?"},
                                                {"from": "gpt", "value": c.capitalize() + "."}],
                              "references": refs})
for i in range(60):
    img, w, h = canvas(i + 60)
    word = words[i % len(words)]
    ImageDraw.Draw(img).text((3, h // 3), word.upper(), fill=(255, 255, 255))
    tag_first = i % 2 == 0
    q = "What word is written?"
    records["docs"].append({"id": f"doc-{i}", "image": save(i + 60, img, "doc"),
                            "conversations": [{"from": "human", "value": ("<image>\n" + q) if tag_first else (q + "\n<image>")},
                                              {"from": "gpt", "value": word}]})
for i in range(60):
    img, w, h = canvas(i + 120)
    s = shapes[i % len(shapes)]
    c = names[(i * 5) % len(names)]
    d = ImageDraw.Draw(img)
    box = [w // 4, h // 4, 3 * w // 4, 3 * h // 4]
    if s == "circle":
        d.ellipse(box, fill=colours[c])
    elif s == "square":
        d.rectangle(box, fill=colours[c])
    elif s == "triangle":
        d.polygon([(w // 2, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4)], fill=colours[c])
    else:
        d.regular_polygon((w // 2, h // 2, min(w, h) // 4), 6, fill=colours[c])
    conv = [{"from": "human", "value": "<image>\nWhich shape is shown?"}, {"from": "gpt", "value": s}]
    if i % 3 == 0:
        conv += [{"from": "human", "value": "And its colour?"}, {"from": "gpt", "value": c}]
    records["shapes"].append({"id": f"shp-{i}", "image": save(i + 120, img, "shp"), "conversations": conv})

for k, v in records.items():
    with open(os.path.join(out, f"{k}.json"), "w") as f:
        json.dump(v, f, indent=1)
print(f"wrote {sum(len(v) for v in records.values())} records to {out}")
