/* bench_parse.c - cost of the per-line parse hot path (agent/parse.h).
 *
 * Generates N deterministic JSON log lines of ~220 bytes (timestamp, level,
 * message, trace and span ids, a few application keys), then turns them all
 * into ECS events with sl_parse_event into one reused batch-sized buffer.
 * Prints ns/line, input MB/s and CPU seconds per GB of input (the unit of
 * DESIGN.md's hot path budget: a jansson DOM per line costs ~26 CPU-s/GB,
 * the target here is < 2.5). For comparison the same lines go through the
 * raw parser and through jansson json_loadb alone (a lower bound for any
 * DOM-based design: it does not even write the event).
 *
 *   bench_parse [lines] [--no-jansson] [--json-only] [--gen-only]
 *   bench_parse --parser NAME FILE    # any parser on a file's lines
 *                                     # (bench/gen.py --kind ... makes them)
 *
 * --gen-only stops after generating the lines: subtracting its `perf stat`
 * counts from a --json-only run gives the parser's own cycles and
 * instructions, which (unlike times) do not depend on the machine's load.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "parse.h"
#include "sl_buf.h"

/* Like a parse worker's batch: events accumulate, then the batch is sent
 * and the buffer reused. */
#define BATCH_BYTES (1u << 20)

static uint64_t rng = 0x243F6A8885A308D3ULL;

static uint64_t
rnd(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static double
cpu_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
wall_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
gen_lines(size_t n, size_t **offs, size_t *total)
{
  static const char *const levels[] = { "info", "INFO", "warn", "error",
                                        "debug" };
  static const char *const msgs[] = {
    "request completed", "cache miss, loading from db",
    "payment authorised for order", "retrying upstream call",
    "user logged in",
  };
  static const char *const paths[] = { "/api/v1/orders", "/api/v1/users",
                                       "/healthz", "/api/v2/cart/items" };
  size_t cap = n * 260 + 1, len = 0, i;
  char *buf = malloc(cap);
  size_t *o = malloc((n + 1) * sizeof(*o));
  uint64_t t = 1714564800000ULL;

  if (buf == NULL || o == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  for (i = 0; i < n; i++) {
    uint64_t r = rnd(), a = rnd(), b = rnd();

    t += r % 50;
    o[i] = len;
    len += (size_t)snprintf(buf + len, cap - len,
      "{\"ts\":\"2024-05-01T%02u:%02u:%02u.%03uZ\",\"level\":\"%s\","
      "\"msg\":\"%s %u\",\"trace_id\":\"%016llx%016llx\","
      "\"span_id\":\"%016llx\",\"method\":\"GET\",\"path\":\"%s/%u\","
      "\"status\":%u,\"duration_ms\":%u.%u,\"user\":{\"id\":%u}}",
      (unsigned)(t / 3600000 % 24), (unsigned)(t / 60000 % 60),
      (unsigned)(t / 1000 % 60), (unsigned)(t % 1000),
      levels[r % 5], msgs[(r >> 8) % 5], (unsigned)(r >> 32) % 100000,
      (unsigned long long)a, (unsigned long long)b,
      (unsigned long long)(a ^ b), paths[(r >> 16) % 4],
      (unsigned)(b % 100000), (r >> 20) % 7 ? 200u : 503u,
      (unsigned)(a % 900), (unsigned)(b % 10), (unsigned)(a % 1000000));
  }
  o[n] = len;
  *offs = o;
  *total = len;
  return buf;
}

/* The lines of a file (without their '\n'), as offsets like gen_lines. */
static char *
load_lines(const char *path, size_t *n, size_t **offs, size_t *total)
{
  FILE *f = fopen(path, "rb");
  size_t cap = 1 << 20, len = 0, k = 0, i, start, *o;
  char *buf = malloc(cap);

  if (f == NULL || buf == NULL) {
    perror(path);
    exit(1);
  }
  for (;;) {
    if (len == cap && (buf = realloc(buf, cap *= 2)) == NULL)
      exit(1);
    i = fread(buf + len, 1, cap - len, f);
    if (i == 0)
      break;
    len += i;
  }
  fclose(f);
  for (i = 0; i < len; i++)
    k += buf[i] == '\n';
  /* Compact: drop the newlines so lines sit back to back. */
  o = malloc((k + 2) * sizeof(*o));
  if (o == NULL)
    exit(1);
  *n = 0;
  start = 0;
  *total = 0;
  for (i = 0; i < len; i++) {
    if (buf[i] != '\n')
      continue;
    o[*n] = *total;
    memmove(buf + *total, buf + start, i - start);
    *total += i - start;
    (*n)++;
    start = i + 1;
  }
  o[*n] = *total;
  *offs = o;
  return buf;
}

static void
report(const char *name, size_t n, size_t bytes, double wall, double cpu)
{
  double gb = (double)bytes / 1e9;

  printf("%-24s %8.1f ns/line %8.1f MB/s %7.2f CPU-s/GB\n", name,
         wall * 1e9 / (double)n, (double)bytes / 1e6 / wall, cpu / gb);
}

static int
run_parser(const char *parser, const char *name, const char *lines,
           const size_t *offs, size_t n, size_t bytes)
{
  struct sl_agent_info info = { "bench-host", "0123456789abcdef", NULL,
                                "bench" };
  struct sl_src src = { "/var/log/app/service.log", 2049, 131074, 42 };
  struct sl_parse_ctx *ctx = NULL;
  struct sl_buf out;
  json_t *in;
  char err[256];
  double w0, c0;
  size_t i, events_bytes = 0, failures = 0;
  int rc;

  in = json_pack("{s:s,s:s,s:s,s:{s:s}}", "parser", parser, "dataset",
                 "checkout.app", "service", "checkout", "fields", "env",
                 "prod");
  if (sl_parse_ctx_new(in, &info, &ctx, err, sizeof(err)) != 0) {
    fprintf(stderr, "ctx: %s\n", err);
    return 1;
  }
  json_decref(in);
  sl_buf_init(&out, 0);
  /* Check first, untimed: the generated lines must all parse as JSON. */
  for (i = 0; i < n && i < 20000; i++) {
    sl_buf_reset(&out);
    if (sl_parse_event(ctx, &src, lines + offs[i], offs[i + 1] - offs[i],
                       offs[i], 0, 1714564800000000000LL, &out) != 0)
      return 1;
    if (strstr(out.p, "_parse_failure\"]"))
      failures++;
  }
  sl_buf_reset(&out);
  w0 = wall_s();
  c0 = cpu_s();
  for (i = 0; i < n; i++) {
    /* Lines are handed over without their '\n', as the tailer does. */
    rc = sl_parse_event(ctx, &src, lines + offs[i], offs[i + 1] - offs[i],
                        offs[i], 0, 1714564800000000000LL, &out);
    if (rc != 0) {
      fprintf(stderr, "parse: %d\n", rc);
      return 1;
    }
    /* NDJSON separator, as a batch has. */
    if (sl_buf_append_byte(&out, '\n') != 0)
      return 1;
    if (out.len >= BATCH_BYTES) {
      events_bytes += out.len;
      sl_buf_reset(&out);
    }
  }
  events_bytes += out.len;
  report(name, n, bytes, wall_s() - w0, cpu_s() - c0);
  printf("%-24s %8.1f bytes/event out, %zu parse failures in the first "
         "20000\n", "", (double)events_bytes / (double)n, failures);
  sl_buf_free(&out);
  sl_parse_ctx_free(ctx);
  return failures != 0 && strcmp(parser, "json") == 0;
}

int
main(int argc, char **argv)
{
  size_t n = 1000000, bytes, i, *offs;
  char *lines;
  int with_jansson = 1, with_raw = 1, with_json = 1, rc = 0, k;
  double w0, c0;

  if (argc == 4 && strcmp(argv[1], "--parser") == 0) {
    lines = load_lines(argv[3], &n, &offs, &bytes);
    printf("%zu lines, %.1f MB from %s\n", n, (double)bytes / 1e6, argv[3]);
    rc = n ? run_parser(argv[2], argv[2], lines, offs, n, bytes) : 1;
    free(lines);
    free(offs);
    return rc;
  }
  for (k = 1; k < argc; k++) {
    if (strcmp(argv[k], "--no-jansson") == 0)
      with_jansson = 0;
    else if (strcmp(argv[k], "--json-only") == 0)
      with_jansson = with_raw = 0;
    else if (strcmp(argv[k], "--gen-only") == 0)
      with_jansson = with_raw = with_json = 0;
    else
      n = strtoull(argv[k], NULL, 10);
  }
  if (n == 0)
    n = 1;
  lines = gen_lines(n, &offs, &bytes);
  printf("%zu lines, %.1f MB, %.1f bytes/line (+1 newline each)\n", n,
         (double)bytes / 1e6, (double)bytes / (double)n);
  printf("sample: %.*s\n", (int)(offs[1] - offs[0]), lines);
  /* The bytes counted are the lines without '\n' (what the parser sees). */
  if (with_json)
    rc |= run_parser("json", "sl_parse_event json", lines, offs, n, bytes);
  if (with_raw)
    rc |= run_parser("raw", "sl_parse_event raw", lines, offs, n, bytes);
  if (with_jansson) {
    w0 = wall_s();
    c0 = cpu_s();
    for (i = 0; i < n; i++) {
      json_t *j = json_loadb(lines + offs[i], offs[i + 1] - offs[i], 0,
                             NULL);

      if (j == NULL) {
        rc = 1;
        break;
      }
      json_decref(j);
    }
    report("jansson json_loadb only", n, bytes, wall_s() - w0, cpu_s() - c0);
  }
  free(lines);
  free(offs);
  return rc;
}
