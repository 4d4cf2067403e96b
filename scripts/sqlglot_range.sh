#!/usr/bin/env bash
# Run the guard's pure tests (tests/test_guard.py: the whole attack/read corpus on its final
# text) against the lowest and the highest sqlglot that pyproject.toml allows, each in a
# throwaway venv that borrows every other package from .venv. Not part of `make test`
# (`make guard-range`). Prints one line per version and exits non-zero if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
spec=$($PY - <<'PYEOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
dep = next(d for d in deps if re.match(r"sqlglot\b", d))
print(re.sub(r"^sqlglot(\[[^\]]*\])?", "", dep).split(";")[0].strip())
PYEOF
)
low=$(sed -n 's/.*>=\s*\([0-9][0-9.]*\).*/\1/p' <<<"$spec")
base=$($PY -c 'import sys; print(sys._base_executable)')
site=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
status=0
for which in lowest highest; do
  dir=$(mktemp -d /tmp/hybridwb-sqlglot-XXXXXX)
  "$base" -m venv "$dir"
  vsite=$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$site" >"$vsite/zz_hybridwb_deps.pth"  # after the venv's own sqlglot on sys.path
  if [[ $which == lowest ]]; then req="sqlglot==$low"; else req="sqlglot$spec"; fi
  "$dir/bin/python" -m pip install -q --no-deps "$req"
  version=$("$dir/bin/python" -c 'import sqlglot; print(sqlglot.__version__)')
  if out=$("$dir/bin/python" -m pytest -q -p no:cacheprovider tests/test_guard.py 2>&1); then
    echo "sqlglot $version ($which allowed by '$spec'): $(tail -n 1 <<<"$out")"
  else
    echo "sqlglot $version ($which allowed by '$spec'): FAILED"
    grep -E '^(FAILED|ERROR)' <<<"$out" | head -n 20
    status=1
  fi
  rm -rf "$dir"
done
exit $status
