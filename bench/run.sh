#!/usr/bin/env bash
# bench/run.sh - throughput, CPU and memory of sluice-agent on a generated
# workload, from agent start until the counting sink has every record.
#
#   bench/run.sh                 # 2,000,000 JSON lines, tcp + lumberjack, 3 runs
#   LINES=500000 RUNS=1 MODES=lumberjack bench/run.sh
#   NGINX=1 PARSER=raw bench/run.sh
#
# Env: BUILD (default build-bench, configured --buildtype=release if absent),
# WORK (default /tmp/sluice-bench), LINES, RUNS, MODES ("tcp lumberjack"),
# WORKERS (2), LEVEL (lumberjack compression level, 1), NGINX, PARSER (json),
# QUEUE (queue.max_bytes, e.g. 16MiB; default: the agent's default).
# Prints one line per run and a markdown table of medians.
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
[ -n "$NGINX" ] && kind=nginx
INPUT=$WORK/input-$kind-$LINES.log
if [ ! -s "$INPUT" ]; then
  echo "generating $INPUT" >&2
  /usr/bin/python3 "$SRC/bench/gen.py" --lines "$LINES" ${NGINX:+--nginx} \
    "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
BYTES=$(stat -c %s "$INPUT")
TCK=$(getconf CLK_TCK)

now() { date +%s.%N; }

# one_run MODE -> prints "wall cpu rss_kib"
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
  cat >"$dir/agent.yml" <<EOF
{"data_dir": "$dir/data", "workers": $WORKERS, "log_level": "warn",
 "http": {"listen": ""},$queue
 "inputs": [{"type": "file", "paths": ["$INPUT"], "parser": "$PARSER",
             "dataset": "bench"}],
 "output": $out}
EOF
  t0=$(now)
  "$AGENT" -c "$dir/agent.yml" 2>"$dir/agent.log" &
  apid=$!
  wait "$sinkpid"
  t1=$(now)
  # utime + stime (fields 14, 15) and peak RSS while the agent still runs.
  local cpu rss
  cpu=$(awk -v t="$TCK" '{print ($14 + $15) / t}' "/proc/$apid/stat")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$apid/status")
  kill -TERM "$apid"
  wait "$apid" || true
  echo "$(echo "$t1 - $t0" | bc -l) $cpu $rss"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "input: $INPUT ($LINES lines, $BYTES bytes), workers=$WORKERS" >&2
TABLE="| output | wall s | MB/s | CPU-s | CPU-s/GB | peak RSS MiB |
|---|---|---|---|---|---|"
for mode in $MODES; do
  walls=() cpus=() rsss=()
  for r in $(seq "$RUNS"); do
    read -r w c m < <(one_run "$mode")
    printf '%s run %d: wall %.2fs cpu %.2fs rss %d KiB\n' "$mode" "$r" "$w" "$c" "$m" >&2
    walls+=("$w") cpus+=("$c") rsss+=("$m")
  done
  w=$(printf '%s\n' "${walls[@]}" | median)
  c=$(printf '%s\n' "${cpus[@]}" | median)
  m=$(printf '%s\n' "${rsss[@]}" | median)
  label=$mode
  [ "$mode" = lumberjack ] && label="lumberjack (level $LEVEL)"
  [ "$mode" = tcp ] && label="tcp json_lines"
  TABLE+=$'\n'$(awk -v l="$label" -v w="$w" -v c="$c" -v m="$m" -v b="$BYTES" \
    'BEGIN {printf "| %s | %.2f | %.0f | %.2f | %.2f | %.1f |", l, w, b/1e6/w, c, c/(b/1e9), m/1024}')
done
echo "$TABLE"
