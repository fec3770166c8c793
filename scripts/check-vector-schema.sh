#!/usr/bin/env bash
# Validates every conformance vector against tests/vector.schema.json (Python jsonschema,
# installed into a virtualenv in the cache, not in the clone).
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
venv="$CREDPOOL_CACHE/venv-tools"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import jsonschema' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'jsonschema==4.23.0'
fi
"$venv/bin/python" - "$CREDPOOL_ROOT/tests" <<'PY'
import json, pathlib, sys
from jsonschema import Draft202012Validator
root = pathlib.Path(sys.argv[1])
validator = Draft202012Validator(json.loads((root / "vector.schema.json").read_text()))
files = sorted((root / "vectors").glob("*.json"))
bad = 0
for path in files:
    for error in validator.iter_errors(json.loads(path.read_text())):
        bad += 1
        print(f"{path.name}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
print(f"{len(files)} vectors checked against the schema, {bad} problems")
sys.exit(1 if bad else 0)
PY
