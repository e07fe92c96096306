#!/usr/bin/env bash
# bench/run.sh - throughput, CPU, page faults and memory of sluice-agent on
# a generated workload, from agent start until the counting sink has every
# record, next to two references measured in the same invocation.
#
#   bench/run.sh                 # 2,000,000 flat JSON lines, tcp + lumberjack, 3 runs
#   WORKLOAD=nested bench/run.sh # nested objects, arrays, \u00fc escapes, UTF-8
#   LINES=500000 RUNS=1 MODES=lumberjack bench/run.sh
#   WORKLOAD=nginx PARSER=raw bench/run.sh
#
# Env: BUILD (default build-bench, configured --buildtype=release if absent),
# WORK (default /tmp/sluice-bench), LINES, RUNS, MODES ("tcp lumberjack"),
# WORKERS (2), LEVEL (lumberjack compression level, 1), WORKLOAD (flat |
# nested | nginx | any other gen.py --kind; NGINX=1 is the old spelling of
# nginx), PARSER (json),
# QUEUE (queue.max_bytes, e.g. 16MiB; default: the agent's default),
# REFS (1: also time the references; 0: skip them), REF_BUILD (where
# bench_ref_jansson is built; default BUILD), PERF (1: attach
# `perf record -e cpu-clock -g` to the agent of each run and print its top
# entries; the sampling costs a few % CPU, so compare CPU only between runs
# with the same PERF), LOG_LEVEL (agent log level, warn; info shows the
# buffer pools' hit/miss counters in $WORK/run-*/agent.log), BATCH_EVENTS
# (batch_max_events; default: the agent's default).
#
# Per run: wall, CPU-s (utime + stime), minor page faults (/proc/PID/stat
# field 10, all threads), peak RSS (VmHWM) and the fault ratio
# faults / (peak RSS / 4 KiB): 1 means every page of the peak was touched
# about once; much more means memory is given back and faulted in again.
# References (same input, same machine, same minute, so numbers stay
# comparable on a noisy machine): `gzip -1` of the input, and
# bench_ref_jansson (bench/ref_jansson.c), a jansson DOM parse + dump of
# every line. Prints one line per run and a markdown table of medians.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
WORK=${WORK:-/tmp/sluice-bench}
LINES=${LINES:-2000000}
RUNS=${RUNS:-3}
MODES=${MODES:-"tcp lumberjack"}
WORKERS=${WORKERS:-2}
LEVEL=${LEVEL:-1}
PARSER=${PARSER:-json}
QUEUE=${QUEUE:-}
NGINX=${NGINX:-}
WORKLOAD=${WORKLOAD:-flat}
[ -n "$NGINX" ] && WORKLOAD=nginx
REFS=${REFS:-1}
REF_BUILD=${REF_BUILD:-$BUILD}
PERF=${PERF:-0}
LOG_LEVEL=${LOG_LEVEL:-warn}
BATCH_EVENTS=${BATCH_EVENTS:-}
case "$WORKLOAD" in
  flat) genflag="" ;;
  nested) genflag="--nested" ;;
  nginx) genflag="--nginx" ;;
  *) genflag="--kind $WORKLOAD" ;;  # gen.py's other kinds (bench/parsers.sh)
esac

if [ ! -x "$BUILD/agent/sluice-agent" ] || [ ! -x "$BUILD/bench/bench_sink" ]; then
  if [ ! -d "$BUILD" ]; then
    meson setup "$BUILD" "$SRC" --buildtype=release -Dtests=false >/dev/null
  fi
  ninja -C "$BUILD" agent/sluice-agent bench/bench_sink >/dev/null
fi
AGENT=$BUILD/agent/sluice-agent
SINK=$BUILD/bench/bench_sink
mkdir -p "$WORK"

kind=json
[ "$WORKLOAD" != flat ] && kind=$WORKLOAD
INPUT=$WORK/input-$kind-$LINES.log
if [ ! -s "$INPUT" ]; then
  echo "generating $INPUT" >&2
  /usr/bin/python3 "$SRC/bench/gen.py" --lines "$LINES" $genflag \
    "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
BYTES=$(stat -c %s "$INPUT")
TCK=$(getconf CLK_TCK)

now() { date +%s.%N; }

# one_run MODE -> prints "wall cpu rss_kib minflt"
one_run() {
  local mode=$1 dir=$WORK/run-$mode sinkmode out sinkpid apid t0 t1
  rm -rf "$dir"
  mkdir -p "$dir/data"
  if [ "$mode" = lumberjack ]; then sinkmode=lumberjack; else sinkmode=lines; fi
  "$SINK" --mode "$sinkmode" --expect "$LINES" --port-file "$dir/port" \
    >"$dir/sink.out" &
  sinkpid=$!
  for _ in $(seq 200); do [ -s "$dir/port" ] && break; sleep 0.01; done
  local port
  port=$(cat "$dir/port")
  if [ "$mode" = lumberjack ]; then
    out="{\"type\":\"lumberjack\",\"hosts\":[\"127.0.0.1:$port\"],\"compression_level\":$LEVEL}"
  else
    out="{\"type\":\"tcp\",\"format\":\"json_lines\",\"hosts\":[\"127.0.0.1:$port\"]}"
  fi
  local queue=""
  [ -n "$QUEUE" ] && queue=" \"queue\": {\"max_bytes\": \"$QUEUE\"},"
  [ -n "$BATCH_EVENTS" ] && queue+=" \"batch_max_events\": $BATCH_EVENTS,"
  cat >"$dir/agent.yml" <<EOF
{"data_dir": "$dir/data", "workers": $WORKERS, "log_level": "$LOG_LEVEL",
 "http": {"listen": ""},$queue
 "inputs": [{"type": "file", "paths": ["$INPUT"], "parser": "$PARSER",
             "dataset": "bench"}],
 "output": $out}
EOF
  t0=$(now)
  "$AGENT" -c "$dir/agent.yml" 2>"$dir/agent.log" &
  apid=$!
  local perfpid=""
  if [ "$PERF" = 1 ]; then
    perf record -q -e cpu-clock -F 2000 -g -p "$apid" -o "$dir/perf.data" \
      >/dev/null 2>&1 &
    perfpid=$!
  fi
  wait "$sinkpid"
  t1=$(now)
  if [ -n "$perfpid" ]; then
    kill -INT "$perfpid"
    wait "$perfpid" || true
    {
      echo "== perf $mode: self time by binary"
      perf report -i "$dir/perf.data" --no-children --sort dso \
        --percent-limit 0.5 --stdio -g none 2>/dev/null | grep -v '^#' |
        grep -v '^$' | head -8
      # Stripped libraries (libdeflate) only have addresses: by binary above.
      echo "== perf $mode: self time by symbol (top 20, named only)"
      perf report -i "$dir/perf.data" --no-children --sort dso,sym \
        --percent-limit 0.5 --stdio -g none 2>/dev/null | grep -v '^#' |
        grep -v '^$' | grep -v '\] 0x0000' | head -20
      echo "== perf $mode: page faults and munmap, by caller (children)"
      perf report -i "$dir/perf.data" --children --sort sym --stdio -g none \
        2>/dev/null | grep -E 'asm_exc_page_fault|__munmap|__mmap|madvise' |
        head -5
    } >&2
  fi
  # minflt, utime + stime (fields 10, 14, 15) and peak RSS while the agent
  # still runs. The command name (field 2) has no blanks: sluice-agent.
  local cpu rss flt
  read -r cpu flt < <(awk -v t="$TCK" '{print ($14 + $15) / t, $10}' \
    "/proc/$apid/stat")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$apid/status")
  kill -TERM "$apid"
  wait "$apid" || true
  echo "$(echo "$t1 - $t0" | bc -l) $cpu $rss $flt"
}

# CPU-s of a command: utime + stime as bash's `time` reports them.
cpu_of() {
  local TIMEFORMAT='%U %S' t
  t=$( { time "$@" >/dev/null 2>&1; } 2>&1 )
  echo "$t" | awk '{print $1 + $2}'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "input: $INPUT ($LINES lines, $BYTES bytes, workload $WORKLOAD)," \
  "workers=$WORKERS" >&2
TABLE="| output | wall s | MB/s | CPU-s | CPU-s/GB | minor faults | faults / RSS pages | peak RSS MiB |
|---|---|---|---|---|---|---|---|"
for mode in $MODES; do
  walls=() cpus=() rsss=() flts=()
  for r in $(seq "$RUNS"); do
    read -r w c m f < <(one_run "$mode")
    printf '%s run %d: wall %.2fs cpu %.2fs rss %d KiB minflt %d (%.2f x RSS pages)\n' \
      "$mode" "$r" "$w" "$c" "$m" "$f" "$(echo "$f / ($m / 4)" | bc -l)" >&2
    walls+=("$w") cpus+=("$c") rsss+=("$m") flts+=("$f")
  done
  w=$(printf '%s\n' "${walls[@]}" | median)
  c=$(printf '%s\n' "${cpus[@]}" | median)
  m=$(printf '%s\n' "${rsss[@]}" | median)
  f=$(printf '%s\n' "${flts[@]}" | median)
  label=$mode
  [ "$mode" = lumberjack ] && label="lumberjack (level $LEVEL)"
  [ "$mode" = tcp ] && label="tcp json_lines"
  TABLE+=$'\n'$(awk -v l="$label" -v w="$w" -v c="$c" -v m="$m" -v f="$f" \
    -v b="$BYTES" 'BEGIN {printf "| %s | %.2f | %.0f | %.2f | %.2f | %d | %.2f | %.1f |",
      l, w, b/1e6/w, c, c/(b/1e9), f, f/(m/4), m/1024}')
done
if [ "$REFS" = 1 ]; then
  REF=$REF_BUILD/bench/bench_ref_jansson
  [ -x "$REF" ] || ninja -C "$REF_BUILD" bench/bench_ref_jansson >/dev/null
  cat "$INPUT" >/dev/null  # both read from the page cache, as the agent
  gz=$(cpu_of gzip -1 -c "$INPUT")
  js=$("$REF" "$INPUT" | awk '{print $4}')
  echo "references: gzip -1 cpu ${gz}s, jansson parse+dump cpu ${js}s" >&2
  TABLE+=$'\n'$(awk -v c="$gz" -v b="$BYTES" \
    'BEGIN {printf "| ref: gzip -1 of the input | | | %.2f | %.2f | | | |", c, c/(b/1e9)}')
  TABLE+=$'\n'$(awk -v c="$js" -v b="$BYTES" \
    'BEGIN {printf "| ref: jansson parse + dump per line | | | %.2f | %.2f | | | |", c, c/(b/1e9)}')
fi
echo "$TABLE"
