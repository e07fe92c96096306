/* collector.h - wiring of the collector: inputs -> spool -> indexer, the
 * metrics endpoint and signals. Owns the loop and every module. */
#ifndef SL_COLLECTOR_H
#define SL_COLLECTOR_H

#include "sl_conf.h"

/* Run until SIGTERM/SIGINT drained everything. Returns a process exit code
 * (0 after a clean drain). After a SIGHUP with a valid new config it drains
 * the same way, sets *next to that config (the caller owns it and runs
 * again with it); otherwise *next is NULL. */
int sl_collector_run(struct sl_conf *conf, struct sl_conf **next);

#endif
