#!/usr/bin/env python3
"""Prints the size budgets of issue "The host loop moves into core": each binding's Rust
(`src/`, raw lines) and each language's decision-following loop (code lines: no blank,
comment or docstring lines; the response adapters that read SDK objects are not counted).

    python3 scripts/budgets.py
"""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def rust_lines(crate: str) -> int:
    return sum(len(p.read_text().splitlines()) for p in (ROOT / crate / "src").rglob("*.rs"))


def python_loop_lines() -> int:
    """`_helpers.py` from the driver section (`_GOES_ON`) on; `_responses.py` holds the adapters."""
    path = ROOT / "bindings-python/python/credpool/_helpers.py"
    src = path.read_text()
    lines = src.splitlines()
    docs = set()
    for node in ast.walk(ast.parse(src)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
                if isinstance(first.value.value, str):
                    docs.update(range(first.lineno - 1, first.end_lineno))
    start = next(i for i, line in enumerate(lines) if line.startswith("_GOES_ON"))
    return sum(1 for i in range(start, len(lines))
               if lines[i].strip() and not lines[i].strip().startswith("#") and i not in docs)


def node_loop_lines() -> int:
    """`helpers.mjs` from `CredpoolError` on; above it are the adapters (`responseInfo`)."""
    text = (ROOT / "bindings-node/helpers.mjs").read_text()
    text = text[text.index("export class CredpoolError"):]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("//"))


if __name__ == "__main__":
    for crate in ("bindings-node", "bindings-python", "bindings-wasm"):
        print(f"{crate}/src: {rust_lines(crate)} lines of Rust (budget 1,200)")
    print(f"python decision loop: {python_loop_lines()} code lines (budget 300)")
    print(f"node decision loop: {node_loop_lines()} code lines (budget 300)")
