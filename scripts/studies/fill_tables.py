#!/usr/bin/env python3
"""Copy the tables of results/tables into docs/results.md.

    scripts/studies/fill_tables.py DOC TABLE_DIR

Every block `<!-- table NAME -->` ... `<!-- end table -->` in DOC is replaced by the markdown table
of TABLE_DIR/NAME.md (its lines that start with '|', i.e. without pilot report's title, footnote
and run list, which docs/results.md states once; the bold headings of a `--by-round` file's several
tables are kept, each table after a blank line). A NAME without a file is left as it is, and
reported. Standard library only.
"""
import os
import re
import sys

BLOCK = re.compile(r"(<!-- table ([A-Za-z0-9_.-]+) -->\n)(.*?)(<!-- end table -->)", re.S)


def main(doc, table_dir):
    text = open(doc, encoding="utf-8").read()
    missing = []

    def fill(m):
        path = os.path.join(table_dir, m.group(2) + ".md")
        if not os.path.isfile(path):
            missing.append(m.group(2))
            return m.group(0)
        rows = []
        for l in open(path, encoding="utf-8").read().split("\n"):
            if l.startswith("**"):       # a heading between the tables of `pilot report --by-round`
                rows += ([""] if rows else []) + [l, ""]
            elif l.startswith("|"):
                rows.append(l)
        return m.group(1) + "\n".join(rows) + "\n" + m.group(4)

    new = BLOCK.sub(fill, text)
    if new != text:
        with open(doc + ".tmp", "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(doc + ".tmp", doc)
    for name in missing:
        print(f"   {doc}: no {table_dir}/{name}.md yet, block left as it was")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
