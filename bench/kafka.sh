#!/usr/bin/env bash
# bench/kafka.sh - sluice-agent -> Kafka (sluice-kafka-mock): throughput,
# CPU, page faults and peak RSS of the agent, from agent start until every
# event is acknowledged (delivery reports, acks=all, idempotent producer).
#
#   bench/kafka.sh                          # 1,000,000 flat JSON lines, 3 runs
#   LINES=200000 RUNS=1 COMPRESSION=zstd bench/kafka.sh
#
# Env: BUILD (default build-bench, configured --buildtype=release if
# absent), WORK (/tmp/sluice-bench), LINES, RUNS, WORKERS (2),
# COMPRESSION (none|gzip|snappy|lz4|zstd, default lz4 = the agent's),
# PARTITIONS (4), BROKERS (1), KEY (event.id), LINGER (linger.ms, 5).
# Measured as bench/run.sh does it: CPU-s = utime + stime of the agent
# (/proc/PID/stat), minor faults, VmHWM. The mock broker runs on the same
# 2 cores and is not counted; its CPU is printed apart. The end is seen by
# polling /metrics every 100 ms (adds up to 0.1 s to wall).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
WORK=${WORK:-/tmp/sluice-bench}
LINES=${LINES:-1000000}
RUNS=${RUNS:-3}
WORKERS=${WORKERS:-2}
COMPRESSION=${COMPRESSION:-lz4}
PARTITIONS=${PARTITIONS:-4}
BROKERS=${BROKERS:-1}
KEY=${KEY:-event.id}
LINGER=${LINGER:-5}

if [ ! -x "$BUILD/agent/sluice-agent" ] ||
   [ ! -x "$BUILD/tools/sluice-kafka-mock" ]; then
  if [ ! -d "$BUILD" ]; then
    meson setup "$BUILD" "$SRC" --buildtype=release -Dtests=false >/dev/null
  fi
  ninja -C "$BUILD" agent/sluice-agent tools/sluice-kafka-mock >/dev/null
fi
AGENT=$BUILD/agent/sluice-agent
MOCK=$BUILD/tools/sluice-kafka-mock
mkdir -p "$WORK"
INPUT=$WORK/input-json-$LINES.log
if [ ! -s "$INPUT" ]; then
  echo "generating $INPUT" >&2
  /usr/bin/python3 "$SRC/bench/gen.py" --lines "$LINES" "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
BYTES=$(stat -c %s "$INPUT")
TCK=$(getconf CLK_TCK)
now() { date +%s.%N; }

acked() {
  curl -s "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk '/^sluice_agent_events_acked_total / {print $2}'
}

# one_run -> "wall cpu rss_kib minflt mock_cpu"
one_run() {
  local dir=$WORK/run-kafka mpid apid t0 t1 port boot
  rm -rf "$dir"
  mkdir -p "$dir/data"
  "$MOCK" --brokers "$BROKERS" --topic "bench:$PARTITIONS" </dev/null \
    >"$dir/mock.out" 2>"$dir/mock.log" &
  mpid=$!
  for _ in $(seq 200); do [ -s "$dir/mock.out" ] && break; sleep 0.01; done
  boot=$(head -1 "$dir/mock.out" | sed 's/,/","/g')
  cat >"$dir/agent.yml" <<YML
{"data_dir": "$dir/data", "workers": $WORKERS, "log_level": "info",
 "http": {"listen": "127.0.0.1:0"},
 "inputs": [{"type": "file", "paths": ["$INPUT"], "parser": "json",
             "dataset": "bench"}],
 "output": {"type": "kafka", "brokers": ["$boot"], "topic": "bench",
            "key": "$KEY", "compression": "$COMPRESSION",
            "properties": {"linger.ms": $LINGER}}}
YML
  t0=$(now)
  "$AGENT" -c "$dir/agent.yml" 2>"$dir/agent.log" &
  apid=$!
  port=""
  for _ in $(seq 1000); do
    port=$(grep -o '"http.port":[0-9]*' "$dir/agent.log" 2>/dev/null |
           head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.01
  done
  while [ "$(acked "$port")" != "$LINES" ]; do
    kill -0 "$apid" 2>/dev/null || { echo "agent died" >&2; exit 1; }
    sleep 0.1
  done
  t1=$(now)
  local cpu rss flt mcpu
  read -r cpu flt < <(awk -v t="$TCK" '{print ($14 + $15) / t, $10}' \
    "/proc/$apid/stat")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$apid/status")
  mcpu=$(awk -v t="$TCK" '{print ($14 + $15) / t}' "/proc/$mpid/stat")
  kill -TERM "$apid"
  wait "$apid" || true
  kill -TERM "$mpid"
  wait "$mpid" || true
  echo "$(echo "$t1 - $t0" | bc -l) $cpu $rss $flt $mcpu"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "input: $INPUT ($LINES lines, $BYTES bytes), workers=$WORKERS," \
  "compression=$COMPRESSION partitions=$PARTITIONS brokers=$BROKERS" \
  "key=$KEY linger.ms=$LINGER" >&2
walls=() cpus=() rsss=() flts=() mcpus=()
for r in $(seq "$RUNS"); do
  read -r w c m f mc < <(one_run)
  printf 'kafka run %d: wall %.2fs cpu %.2fs rss %d KiB minflt %d mock cpu %.2fs\n' \
    "$r" "$w" "$c" "$m" "$f" "$mc" >&2
  walls+=("$w") cpus+=("$c") rsss+=("$m") flts+=("$f") mcpus+=("$mc")
done
w=$(printf '%s\n' "${walls[@]}" | median)
c=$(printf '%s\n' "${cpus[@]}" | median)
m=$(printf '%s\n' "${rsss[@]}" | median)
f=$(printf '%s\n' "${flts[@]}" | median)
mc=$(printf '%s\n' "${mcpus[@]}" | median)
echo "| output | wall s | MB/s | CPU-s | CPU-s/GB | minor faults | faults / RSS pages | peak RSS MiB | mock CPU-s |"
echo "|---|---|---|---|---|---|---|---|---|"
awk -v l="kafka ($COMPRESSION, key $KEY)" -v w="$w" -v c="$c" -v m="$m" \
  -v f="$f" -v mc="$mc" -v b="$BYTES" \
  'BEGIN {printf "| %s | %.2f | %.0f | %.2f | %.2f | %d | %.2f | %.1f | %.2f |\n",
    l, w, b/1e6/w, c, c/(b/1e9), f, f/(m/4), m/1024, mc}'
