#!/usr/bin/env bash
# The Debian packages the README's commands use, installed when missing (Makefile targets `test` and `book`,
# and .ci/run through `make test`):
#   dataset-fashion-mnist  the real Fashion-MNIST (/usr/share/datasets/fashion-mnist): Part II of the book
#                          (the tests fall back to the committed fixture tests/fixtures/data/fashion-mnist)
#   chromium               the browser test of the book (tests/test_book.py)
#   npm                    `make book` only: scripts/book_assets.sh vendors the site's JavaScript
# apt-get runs as root, or through sudo when it needs no password. Otherwise one line says what to install
# and the command stops (SYSTEM_DEPS=0 goes on without them: their tests skip or use the fixture).
#   usage: scripts/system_deps.sh test|book
set -euo pipefail
what=${1:-test}
[ "${SYSTEM_DEPS:-1}" = "0" ] && exit 0
FASHION_MNIST_DIR=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
need=()
[ -f "$FASHION_MNIST_DIR/train-images-idx3-ubyte.gz" ] || need+=(dataset-fashion-mnist)
[ -x "$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "$what" = book ]; then command -v npm >/dev/null 2>&1 || need+=(npm); fi
[ ${#need[@]} -eq 0 ] && exit 0
sudo=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "${sudo[*]}" = none ]; then
  why=$(command -v apt-get >/dev/null 2>&1 && echo "not root and no password-less sudo" || echo "no apt-get here")
  echo "error: missing system packages ${need[*]} ($why); fix: sudo apt-get install -y ${need[*]} (Debian/Ubuntu), then make $what again, or make $what SYSTEM_DEPS=0 to go on without them" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}" >&2
if ! { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}"; } >/dev/null; then
  echo "error: apt-get install ${need[*]} failed (see above); fix the package sources or install them by hand, or make $what SYSTEM_DEPS=0 to go on without them" >&2
  exit 1
fi
