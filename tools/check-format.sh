#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks that every C file in the repository is as clang-format (per .clang-format) writes it;
# names each file that is not, with the first lines that differ. Fix with:
#   git ls-files '*.c' '*.h' | xargs clang-format -i
set -euo pipefail
ROOT="${1:-$(dirname "$0")/..}"
cd "$ROOT"
command -v clang-format >/dev/null || {
    echo "check-format: clang-format is not installed (tools/setup.sh installs it)" >&2
    exit 1
}
files=()
while IFS= read -r f; do
    files+=("$f")
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find common broker agent cli tests -name '*.[ch]')
# One process for every file; clang-format names each file and line that differs.
if ! out="$(clang-format --dry-run --Werror "${files[@]}" 2>&1)"; then
    printf '%s\n' "$out" | grep -E '^[^ ].*: (error|warning):' | cut -d: -f1 | sort -u |
        sed 's/^/check-format: not formatted: /'
    printf '%s\n' "$out" | head -20
    echo "check-format: run: git ls-files '*.c' '*.h' | xargs clang-format -i" >&2
    exit 1
fi
echo "check-format: all ${#files[@]} C files are formatted"
