/* collector.h - wiring of the collector: inputs -> spool -> indexer, the
 * metrics endpoint and signals. Owns the loop and every module. */
#ifndef SL_COLLECTOR_H
#define SL_COLLECTOR_H

#include "sl_conf.h"

/* Run until SIGTERM/SIGINT drained everything. Returns a process exit code
 * (0 after a clean drain). After a SIGHUP with a valid new config it drains
 * the same way, sets *next to that config (the caller owns it and runs
 * again with it); otherwise *next is NULL.
 *
 * SL_COLLECTOR_START_FAILED: the run could not start (port taken, data_dir
 * not creatable, spool or Elasticsearch config unusable); everything it
 * opened is closed again and `why` says what failed, so the caller may run
 * the previous config instead (a SIGHUP must not kill the collector). */
#define SL_COLLECTOR_START_FAILED 1
int sl_collector_run(struct sl_conf *conf, struct sl_conf **next, char *why,
                     size_t whylen);

#endif
