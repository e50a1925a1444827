#!/usr/bin/env bash
# Print the path of a Python interpreter >= 3.12, or fail with a clear message.
# Order: $PYTHON, python3.13/python3.12 on PATH, pyenv installs, python3.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
cands=()
[ -n "${PYTHON:-}" ] && cands+=("$PYTHON")
for v in 3.12 3.13 3.14; do
  command -v "python$v" >/dev/null 2>&1 && cands+=("$(command -v python$v)")
done
roots=()
command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root 2>/dev/null)")
roots+=("${PYENV_ROOT:-$HOME/.pyenv}")
for r in "${roots[@]}"; do
  [ -d "$r/versions" ] || continue
  for d in $(ls -1 "$r/versions" 2>/dev/null | grep -E '^3\.(1[2-9])(\.[0-9]+)?$' | sort -t. -k2,2n -k3,3nr); do
    [ -x "$r/versions/$d/bin/python3" ] && cands+=("$r/versions/$d/bin/python3")
  done
done
for p in /usr/local/bin/python3.12 /usr/local/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.13 python3; do
  command -v "$p" >/dev/null 2>&1 && cands+=("$(command -v $p)")
done
for c in "${cands[@]}"; do
  if ok "$c"; then
    "$c" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "error: numpyro-ebm needs Python >= 3.12, and none was found." >&2
echo "  Looked at: \$PYTHON, python3.14/3.13/3.12 on PATH, pyenv versions, python3." >&2
echo "  Install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12." >&2
exit 1
