#!/usr/bin/env bash
# bench/parsers.sh - every parser through the real agent (bench/run.sh, tcp
# json_lines into bench_sink) on its own generated workload, one table:
# CPU-s per GB of input, MB/s, peak RSS, minor faults, with `gzip -1` of
# each input and the jansson DOM reference (JSON input) measured in the
# same invocation, and the load average beside every row.
#
#   bench/parsers.sh                    # 2,000,000 lines per parser, 1 run
#   RUNS=3 bench/parsers.sh
#   ONLY="nginx logfmt" LINES=500000 bench/parsers.sh
#
# Env: LINES, RUNS (median of), BUILD, WORK, WORKERS as bench/run.sh;
# ONLY (parser names of the table below to run).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-$SRC/build-bench}
export WORK=${WORK:-/tmp/sluice-bench}
export LINES=${LINES:-2000000}
export RUNS=${RUNS:-1}
ONLY=${ONLY:-}

# parser  workload (bench/gen.py --kind; flat = the JSON lines of run.sh).
# A new parser is one line here (and a generator in gen.py).
TABLE="
json          flat
raw           nginx_combined
nginx         nginx_combined
apache        apache
nginx_error   nginx_error
apache_error  apache_error
logfmt        logfmt
"
# Parsers of other branches, run when the agent knows them:
OPTIONAL="
syslog        syslog
cri           cri
"

if [ ! -x "$BUILD/agent/sluice-agent" ] || [ ! -x "$BUILD/bench/bench_sink" ]; then
  if [ ! -d "$BUILD" ]; then
    meson setup "$BUILD" "$SRC" --buildtype=release -Dtests=false >/dev/null
  fi
  ninja -C "$BUILD" agent/sluice-agent bench/bench_sink \
    bench/bench_ref_jansson >/dev/null
fi

# (--help read whole first: grep -q would stop reading, and the agent's
# SIGPIPE fails the pipeline under pipefail.)
HELP=$("$BUILD/agent/sluice-agent" --help 2>&1)
supported() {
  grep -q "json|raw.*|$1\b" <<<"$HELP"
}

cpu_of() {
  local TIMEFORMAT='%U %S' t
  t=$( { time "$@" >/dev/null 2>&1; } 2>&1 )
  echo "$t" | awk '{print $1 + $2}'
}

echo "| parser | workload | MB | MB/s | CPU-s | CPU-s/GB | minor faults | peak RSS MiB | gzip -1 CPU-s/GB | load avg |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
while read -r parser workload; do
  [ -n "$parser" ] || continue
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $parser "* ]]; then
    continue
  fi
  if [[ "$OPTIONAL" == *"$parser "* ]] && ! supported "$parser"; then
    echo "parsers.sh: $parser: not in this agent, skipped" >&2
    continue
  fi
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  row=$(WORKLOAD=$workload PARSER=$parser MODES=tcp REFS=0 \
        "$SRC/bench/run.sh" | grep '^| tcp json_lines')
  kind=json
  [ "$workload" != flat ] && kind=$workload
  input=$WORK/input-$kind-$LINES.log
  bytes=$(stat -c %s "$input")
  cat "$input" >/dev/null
  gz=$(cpu_of gzip -1 -c "$input")
  # run.sh row: | output | wall | MB/s | CPU-s | CPU-s/GB | faults | ratio | RSS |
  echo "$row" | awk -F'|' -v p="$parser" -v w="$workload" -v b="$bytes" \
    -v gz="$gz" -v l="$load" '{
      printf "| %s | %s | %.0f |%s|%s|%s|%s|%s| %.2f | %s |\n",
        p, w, b / 1e6, $4, $5, $6, $7, $9, gz / (b / 1e9), l }'
done <<<"$TABLE$OPTIONAL"

if [ -z "$ONLY" ] || [[ " $ONLY " == *" json "* ]]; then
  input=$WORK/input-json-$LINES.log
  js=$("$BUILD/bench/bench_ref_jansson" "$input" | awk '{print $4}')
  awk -v c="$js" -v b="$(stat -c %s "$input")" 'BEGIN {
    printf "\nref: jansson parse + dump per line of the JSON input: %.2f CPU-s/GB\n",
      c / (b / 1e9) }'
fi
