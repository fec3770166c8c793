#!/usr/bin/env python3
"""Prints the README code block marked `<!-- example: NAME -->` (the next fenced block).

    scripts/readme-example.py python > example.py

Tests run the printed code, so the README's examples are executed, not just shown.
"""
import re
import sys
from pathlib import Path

readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
if len(sys.argv) != 2:
    sys.exit("usage: readme-example.py NAME")
match = re.search(
    r"<!-- example: %s -->\s*\n```[a-z]*\n(.*?)\n```" % re.escape(sys.argv[1]), readme, re.S
)
if not match:
    sys.exit(f"README.md has no block marked <!-- example: {sys.argv[1]} -->")
print(match.group(1))
