#!/usr/bin/env bash
# core/wire.d.ts (the TypeScript wire contract both JS packages ship) must name exactly the
# input and reply tags of core/src/wire.rs and the error codes of core/src/error.rs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python3 - <<'PY'
import re, sys
rs = open("core/src/wire.rs").read()
ts = open("core/wire.d.ts").read()
err = open("core/src/error.rs").read()

def variants(enum):
    body = re.search(r"pub enum %s \{(.*?)\n\}" % enum, rs, re.S).group(1)
    names = re.findall(r"^    ([A-Z][A-Za-z]*)\b", body, re.M)
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower() for n in names}

def ts_tags(alias):
    body = re.search(r"export type %s =(.*?)\n\n" % alias, ts, re.S).group(1)
    return set(re.findall(r"type: '([a-z_]+)'", body))

problems = []
for enum, alias, extra in [("Input", "Input", set()), ("Reply", "Reply", {"credential"})]:
    want, have = variants(enum), ts_tags(alias) | (extra if alias == "Reply" else set())
    if want != have:
        problems.append(f"{alias}: wire.rs has {sorted(want - have)} missing from wire.d.ts, "
                        f"wire.d.ts has {sorted(have - want)} unknown to wire.rs")
codes = re.findall(r'Self::\w+ => "([a-z_]+)"', err)
ts_codes = re.findall(r"\| '([a-z_]+)'", re.search(r"export type ErrorCode =(.*?)\n\n", ts, re.S).group(1))
if codes != ts_codes:
    problems.append(f"ErrorCode: error.rs {codes} != wire.d.ts {ts_codes}")
for p in problems:
    print(p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"core/wire.d.ts matches core/src/wire.rs ({len(variants('Input'))} inputs, "
      f"{len(variants('Reply'))} replies, {len(codes)} error codes)")
PY
