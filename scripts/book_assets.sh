#!/usr/bin/env bash
# Vendor the book's JavaScript into book/_assets (git-ignored), so the built site loads nothing
# from the network: MathJax 3 and the ipywidgets HTML manager (+ require.js) from the npm
# registry at the versions pinned in book/package.json, plotly.js from the installed plotly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ASSETS=book/_assets
STAMP=$ASSETS/.vendored
if [ -f "$STAMP" ] && [ "$STAMP" -nt book/package.json ]; then exit 0; fi
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
cp book/package.json "$BUILD/"
(cd "$BUILD" && npm install --no-audit --no-fund --ignore-scripts --no-package-lock --silent)
mkdir -p "$ASSETS/ipywidgets"
# MathJax: the es5 build without the speech-rule engine (large, unused here)
rm -rf "$ASSETS/mathjax" && cp -a "$BUILD/node_modules/mathjax/es5" "$ASSETS/mathjax" && rm -rf "$ASSETS/mathjax/sre"
cp "$BUILD/node_modules/requirejs/require.js" "$ASSETS/ipywidgets/require.js"
cp "$BUILD/node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js" "$ASSETS/ipywidgets/embed-amd.js"
# the html-manager's font files, requested relative to the base URL that config.js sets
mkdir -p "$ASSETS/ipywidgets/@jupyter-widgets/html-manager/dist"
find "$BUILD/node_modules/@jupyter-widgets/html-manager/dist" -maxdepth 1 -type f \
     \( -name '*.woff' -o -name '*.woff2' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
     -exec cp {} "$ASSETS/ipywidgets/@jupyter-widgets/html-manager/dist/" \;
cp "$($PY -c 'import plotly, os; print(os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js"))')" \
   "$ASSETS/plotly.min.js"
date > "$STAMP"
echo "vendored MathJax, require.js, html-manager and plotly.js into $ASSETS"
