/* fuzz_conf.c - libFuzzer target for the config loader (common/sl_conf.c:
 * YAML, schema validation, defaults, ${ENV} expansion, durations, sizes)
 * with the collector's schema and range checks (collector/config.c) and
 * the typed Elasticsearch view. Any input must either load or fail with a
 * non-empty "file:line: key: reason"-style message; never crash. Then the
 * same as --check does it: every error, the checks run on a tree that had
 * errors (sl_conf_load_str_all).
 *
 * Seeds: tests/fuzz/corpus-conf/ (scripts/fuzz-smoke).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sl_conf.h"
#include "sl_err.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sl_conf *c = NULL;
  struct sl_es_conf es;
  char err[1024];
  int rc;

  err[0] = '\0';
  rc = sl_conf_load_str("fuzz.yml", (const char *)data, size,
                        sl_collector_schema, &c, err, sizeof(err));
  if (rc == 0)
    rc = sl_collector_conf_check(c, err, sizeof(err));
  if (rc == 0) {
    err[0] = '\0';
    rc = sl_es_conf_fill(sl_conf_get(sl_conf_root(c), "elasticsearch"),
                         "/nonexistent", &es, err, sizeof(err));
    if (rc == 0)
      sl_es_conf_free(&es);
  }
  if (rc != 0 && err[0] == '\0') {
    fprintf(stderr, "refused without a reason (%s)\n", sl_strerror(rc));
    abort();
  }
  sl_conf_free(c);

  /* What --check does: a config with errors is kept and checked further
   * (values that failed are gone from its tree), then every error is
   * printed. */
  {
    static FILE *devnull;
    int check;

    if (devnull == NULL)
      devnull = fopen("/dev/null", "w");
    err[0] = '\0';
    c = NULL;
    rc = sl_conf_load_str_all("fuzz.yml", (const char *)data, size,
                              sl_collector_schema, &c, err, sizeof(err));
    check = c ? sl_collector_conf_check(c, err, sizeof(err)) : 0;
    if ((rc != 0 || check != 0) && err[0] == '\0' &&
        sl_conf_nerrors(c) == 0) {
      fprintf(stderr, "all: refused without a reason (%s)\n",
              sl_strerror(rc ? rc : check));
      abort();
    }
    if (devnull)
      sl_conf_report(devnull, "fuzz.yml", c, err);
    sl_conf_free(c);
  }
  return 0;
}
