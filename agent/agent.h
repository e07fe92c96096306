/* agent.h - the agent: one I/O loop (tail, output, timers, signals, HTTP)
 * wired to the parse workers.
 *
 *   tail --chunk--> workers --batch--> pending FIFO --send--> output
 *     ^                                                         |
 *     +-------- sl_tail_chunk_done (all its events acked) <-----+
 *
 * Backpressure: batch bytes waiting or in flight are capped by
 * queue.max_bytes and chunk bytes waiting for a worker by a quarter of it;
 * over either limit the chunk callback answers SL_EAGAIN and tail stops
 * reading until sl_tail_resume(). tail itself caps unacknowledged input
 * bytes at queue.max_bytes.
 *
 * Shutdown (SIGTERM/SIGINT): stop reading, workers flush partial batches at
 * once, wait until every chunk handed out is acknowledged or
 * shutdown_timeout passes, close the output, save the registry, exit 0. A
 * second signal skips the wait. SIGHUP validates the config file again: a
 * bad file is logged and ignored; a good one makes the agent drain like
 * SIGTERM and sl_agent_run() return SL_AGENT_RELOAD, and main() starts a
 * new agent from the new file (the registry carries the offsets over).
 */
#ifndef SL_AGENT_AGENT_H
#define SL_AGENT_AGENT_H

#include <stddef.h>

#include "config.h"
#include "sl_conf.h"

struct sl_agent;

/* Build everything from a loaded config (creates data_dir and the agent
 * id, parse contexts, output, tail, workers, HTTP). Nothing runs until
 * sl_agent_run(). Returns 0 or an SL_E* code with a message in err. */
int sl_agent_new(const struct sl_conf *conf, struct sl_agent **out,
                 char *err, size_t errlen);
/* sl_agent_run() result asking main() to start again with the new config. */
#define SL_AGENT_RELOAD 1000

/* Run until shut down by a signal (or sl_agent_stop). Returns the process
 * exit code, or SL_AGENT_RELOAD after a SIGHUP with a valid new file. */
int sl_agent_run(struct sl_agent *a);
/* Begin a graceful shutdown as SIGTERM does (loop thread). */
void sl_agent_stop(struct sl_agent *a);
void sl_agent_free(struct sl_agent *a);

/* --check: everything sl_agent_new validates that needs no side effect
 * (typed config, parse contexts). 0 or SL_ECONFIG with a message. */
int sl_agent_check(const struct sl_conf *conf, char *err, size_t errlen);

/* Read data_dir/agent-id or create it (random UUID v4, written temp +
 * fsync + rename). id receives 36 chars + NUL. */
int sl_agent_load_id(const char *data_dir, char id[37], char *err,
                     size_t errlen);

#endif
