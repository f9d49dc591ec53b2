#!/usr/bin/env python3
"""Write a copy of a run config with some keys changed (for seeds, ablations, sweeps).

    scripts/derive_config.py SRC OUT [section.key=value ...]
    e.g. scripts/derive_config.py configs/vu/pilot.toml runs/vu-pilot-s2.toml run.seed=2 pilot.ata=false

The config format is pilot's TOML subset: `[section]` headers and `key = value` lines. Each
override replaces the key's line in its section, or adds the key to the section (and the section
to the file) if it is missing. A value that is not a number, true/false, a "quoted string" or an
[array] is written as a quoted string, so run.algorithm=fedavg works without shell quoting.
Path keys (run.data, run.base, model.lm, model.vision_tower) are written as absolute paths: a relative path in SRC is resolved
against SRC's directory (as pilot does), a relative path given as an override against the current
directory, so OUT can live anywhere. pilot validates the result when the run starts
(`pilot train --list-keys` lists every key). Standard library only.
"""
import os
import re
import sys

PATH_KEYS = {"run.data", "run.base", "model.lm", "model.vision_tower"}
NAME = re.compile(r"^[A-Za-z0-9_]+$")
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def toml_value(text):
    """The override's text as a TOML value: kept if it already is one, quoted otherwise."""
    t = text.strip()
    if NUMBER.match(t) or t in ("true", "false") or (t.startswith("[") and t.endswith("]")):
        return t
    if len(t) >= 2 and t[0] == '"' and t[-1] == '"':
        return t
    return '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(value):
    v = value.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return None


def strip_comment(line):
    """The line without a trailing # comment (a # inside a quoted string is kept)."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[:i]
    return line


def absolute_path_value(value, base_dir):
    s = unquote(value)
    if s is None:
        return value  # not a string: leave it for pilot to report
    path = s if os.path.isabs(s) else os.path.join(base_dir, s)
    return toml_value('"' + os.path.normpath(os.path.abspath(path)) + '"')


def derive(src_text, src_dir, overrides):
    """overrides: list of (section, key, toml value text, is_path_relative_to_cwd)."""
    lines = src_text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    section = ""
    last_line_of = {"": -1}  # section -> index in out of its last line (header or key)
    key_at = {}  # "section.key" -> index in out
    for raw in lines:
        body = strip_comment(raw).strip()
        if body.startswith("[") and body.endswith("]"):
            section = body[1:-1].strip()
            out.append(raw)
            last_line_of[section] = len(out) - 1
            continue
        if "=" in body:
            key = body.split("=", 1)[0].strip()
            full = f"{section}.{key}" if section else key
            value = body.split("=", 1)[1].strip()
            if full in PATH_KEYS:
                raw = f"{key} = {absolute_path_value(value, src_dir)}"
            out.append(raw)
            key_at[full] = len(out) - 1
            last_line_of[section] = len(out) - 1
            continue
        out.append(raw)
    appended = {}  # section -> lines to insert after its last line
    new_sections = []
    for section, key, value in overrides:
        full = f"{section}.{key}"
        if full in PATH_KEYS:
            value = absolute_path_value(value, os.getcwd())
        line = f"{key} = {value}"
        if full in key_at:
            out[key_at[full]] = line
        elif section in last_line_of:
            appended.setdefault(section, []).append(line)
        else:
            if section not in new_sections:
                new_sections.append(section)
            appended.setdefault(section, []).append(line)
    # Insert from the bottom up so earlier indices stay valid.
    for section in sorted((s for s in appended if s in last_line_of), key=lambda s: -last_line_of[s]):
        i = last_line_of[section] + 1
        out[i:i] = appended[section]
    for section in new_sections:
        out += ["", f"[{section}]"] + appended[section]
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, dst, specs = argv[1], argv[2], argv[3:]
    overrides = []
    for spec in specs:
        key, eq, value = spec.partition("=")
        parts = key.strip().split(".")
        if not eq or len(parts) != 2 or not all(NAME.match(p) for p in parts):
            print(f"derive_config: '{spec}' is not section.key=value (e.g. run.seed=2)", file=sys.stderr)
            return 2
        overrides.append((parts[0], parts[1], toml_value(value)))
    try:
        with open(src, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print(f"derive_config: cannot read {src}: {e.strerror}", file=sys.stderr)
        return 1
    header = f"# derived from {os.path.abspath(src)}" + (f" with {' '.join(specs)}" if specs else "") + \
        " by scripts/derive_config.py\n"
    result = header + derive(text, os.path.dirname(os.path.abspath(src)), overrides)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    tmp = dst + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(result)
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
