/* fuzz_line_stages.c - libFuzzer target for the agent's line stages:
 * the multiline aggregator (agent/multiline.c: patterns, presets, cri and
 * docker partial lines) followed by redaction (agent/redact.c).
 *
 * Input: byte 0 picks the configuration, the rest is split into lines at
 * '\n' (offsets as in a file). Checked for every input:
 *  - every event starts at the offset of a line that was fed, is at most
 *    max_bytes long (plus the cri/docker prefix of one line), and the
 *    aggregator has nothing pending after a flush;
 *  - redaction never fails, and redacting with credit_card alone is
 *    idempotent (what it writes contains no card number).
 *
 * Seeds: tests/fuzz/corpus-line_stages/ (scripts/fuzz-smoke).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "multiline.h"
#include "redact.h"

#define MAX_BYTES 512

static const char *const confs[] = {
  "{\"multiline\":{\"preset\":\"java\",\"max_bytes\":512,\"max_lines\":8}}",
  "{\"multiline\":{\"preset\":\"python\",\"max_bytes\":512}}",
  "{\"multiline\":{\"preset\":\"go\",\"max_bytes\":512}}",
  "{\"multiline\":{\"preset\":\"ruby\",\"max_bytes\":512}}",
  "{\"multiline\":{\"pattern\":\"^\\\\s\",\"max_bytes\":512}}",
  "{\"multiline\":{\"pattern\":\"\\\\\\\\$\",\"match\":\"before\","
  "\"max_bytes\":512}}",
  "{\"parser\":\"cri\",\"multiline\":{\"pattern\":\"^[^0-9]\","
  "\"negate\":false,\"max_bytes\":512}}",
  "{\"parser\":\"docker\",\"multiline\":{\"max_bytes\":512,"
  "\"preset\":\"java\"}}",
};
#define NCONF (sizeof(confs) / sizeof(confs[0]))

static struct sl_ml_conf *mc[NCONF];
static struct sl_redact *red_all, *red_card;
static struct sl_redact_scratch sc, sc2;
static uint8_t is_start[1 << 16];

static void
die(const char *what)
{
  fprintf(stderr, "fuzz_line_stages: %s\n", what);
  abort();
}

static int
emit(void *arg, const char *p, size_t len, uint64_t off, unsigned flags)
{
  const char *o, *o2;
  size_t n, n2;
  char *copy;
  int rc;

  (void)arg;
  (void)flags;
  if (off >= sizeof(is_start) || !is_start[off])
    die("event offset is not a line start");
  if (len > 2 * MAX_BYTES + 65536)
    die("event longer than its limits");
  rc = sl_redact_apply(red_all, &sc, p, len, &o, &n);
  if (rc < 0)
    die("redact failed");
  rc = sl_redact_apply(red_card, &sc, p, len, &o, &n);
  if (rc < 0)
    die("redact failed");
  if (rc == 1) {
    copy = malloc(n ? n : 1);
    memcpy(copy, o, n);
    if (sl_redact_apply(red_card, &sc2, copy, n, &o2, &n2) != 0)
      die("credit_card redaction left a card number");
    free(copy);
  }
  return 0;
}

static void
init(void)
{
  json_t *in;
  size_t i;
  char err[256];

  for (i = 0; i < NCONF; i++) {
    in = json_loads(confs[i], 0, NULL);
    if (in == NULL || sl_ml_conf_new(in, &mc[i], err, sizeof(err)) ||
        mc[i] == NULL)
      die(err);
    json_decref(in);
  }
  in = json_loads("{\"redact\":[\"credit_card\",\"secrets\",\"email\","
                  "{\"pattern\":\"(a+)(b*)\",\"replacement\":\"$2$1$$\"}]}",
                  0, NULL);
  if (sl_redact_new(in, &red_all, err, sizeof(err)))
    die(err);
  json_decref(in);
  in = json_loads("{\"redact\":[\"credit_card\"]}", 0, NULL);
  if (sl_redact_new(in, &red_card, err, sizeof(err)))
    die(err);
  json_decref(in);
  if (sl_redact_scratch_init(&sc) || sl_redact_scratch_init(&sc2))
    die("scratch");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int ready;
  struct sl_ml *m;
  const char *p, *end, *nl;

  if (!ready) {
    init();
    ready = 1;
  }
  if (size < 1 || size > sizeof(is_start))
    return 0;
  if (sl_ml_new(mc[data[0] % NCONF], emit, NULL, &m))
    die("sl_ml_new");
  memset(is_start, 0, size);
  p = (const char *)data + 1;
  end = (const char *)data + size;
  while (p < end) {
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
      nl = end;
    is_start[p - (const char *)data - 1] = 1;
    if (sl_ml_line(m, p, (size_t)(nl - p),
                   (uint64_t)(p - (const char *)data - 1), 0))
      die("sl_ml_line failed");
    p = nl + 1;
  }
  if (sl_ml_flush(m))
    die("flush failed");
  if (sl_ml_pending_offset(m) != UINT64_MAX)
    die("pending after flush");
  sl_ml_free(m);
  return 0;
}
