/* collector.h - wiring of the collector: inputs -> spool -> indexer, the
 * metrics endpoint and signals. Owns the loop and every module. */
#ifndef SL_COLLECTOR_H
#define SL_COLLECTOR_H

#include "sl_conf.h"

/* Run until SIGTERM/SIGINT drained everything. Returns a process exit code
 * (0 after a clean drain). */
int sl_collector_run(struct sl_conf *conf);

#endif
