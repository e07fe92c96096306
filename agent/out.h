/* out.h - the output stage: one ops table per output type (fluent-bit
 * output plugins, redis ConnectionType).
 *
 * All calls and callbacks run on the agent's I/O loop. The agent owns a FIFO
 * of ready batches and offers them one at a time with send():
 *   SL_SENT   the output took the batch; it will come back exactly once,
 *             through cbs->acked (delivered: the agent releases its chunks)
 *             or cbs->requeue (not delivered: the agent sends it again,
 *             maybe through another connection).
 *   SL_RETRY  not now (no connection, or max_inflight reached); the agent
 *             keeps the batch and offers it again after cbs->writable.
 *   SL_DROP   never returned by the outputs here (nothing is dropped).
 * requeue pushes to the FRONT of the agent's FIFO, so an output returning
 * several batches calls it newest first to keep the original order.
 *
 * What "acked" means differs by output, on purpose and documented:
 *   lumberjack  the receiver's ACK frame for the window's last sequence
 *               (at-least-once end to end);
 *   tcp         uv_write completed: the bytes are in the kernel's socket
 *               buffer. WEAKER: a receiver crash can lose what it had not
 *               processed; there is no application-level ack in json_lines;
 *   file        write() completed and the file was fsync'ed;
 *   stdout      write() completed.
 *   kafka       every message of the batch has a successful delivery
 *               report (acks=all, idempotent producer) or was written to
 *               the dead-letter file after a permanent error
 *               (out_kafka.c).
 */
#ifndef SL_AGENT_OUT_H
#define SL_AGENT_OUT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "sl_buf.h"
#include "sl_config.h"
#include "sl_err.h"

struct sl_out_cbs {
  void *arg;
  void (*acked)(void *arg, struct sl_batch *b);
  void (*requeue)(void *arg, struct sl_batch *b);
  void (*writable)(void *arg);
};

struct sl_out_stats {
  uint64_t connects;         /* successful connections */
  uint64_t disconnects;      /* connections lost or closed by us */
  uint64_t timeouts;         /* no ack progress within timeout */
  uint64_t resent;           /* batches handed back for resending */
  uint64_t bytes_sent;       /* wire bytes written */
  uint64_t inflight;         /* batches sent, not yet acked */
  uint64_t connected;        /* connections up now */
};

struct sl_out;

struct sl_out_ops {
  const char *name;
  int (*init)(uv_loop_t *loop, const struct sl_agent_conf *ac,
              const struct sl_out_cbs *cbs, struct sl_out **out, char *err,
              size_t errlen);
  enum sl_out_result (*send)(struct sl_out *o, struct sl_batch *b);
  /* Non-zero when the output can deliver now (for /ready). */
  int (*ready)(const struct sl_out *o);
  void (*stats)(const struct sl_out *o, struct sl_out_stats *st);
  /* Hand back every unacked batch through requeue, close everything;
   * cb runs when all handles are closed and the output is freed. */
  void (*close)(struct sl_out *o, void (*cb)(void *arg), void *arg);
  /* Optional: output-specific Prometheus samples for /metrics. */
  int (*metrics)(const struct sl_out *o, struct sl_buf *b);
  /* Optional: a new JSON object merged into /debug/state's "output":
   * "connections" [{host, state, inflight}] and "last_error" /
   * "last_error_at" (the latest failure, with its host; null: none). No
   * credentials. NULL on ENOMEM. */
  json_t *(*state)(const struct sl_out *o);
};

/* What the state ops keep of their latest failure. */
struct sl_out_last_err {
  char text[256];            /* "host:port: why: reason" */
  int64_t at_ns;             /* wall time; 0: no failure yet */
};

/* Record a failure (why: the log message; err: an SL_E* or libuv code). */
void sl_out_note_error(struct sl_out_last_err *e, const char *host,
                       const char *port, const char *why, int err);
/* Set "last_error" and "last_error_at" of o from e (null when none). */
int sl_out_put_error(json_t *o, const struct sl_out_last_err *e);

/* Every output struct starts with this. */
struct sl_out {
  const struct sl_out_ops *ops;
};

extern const struct sl_out_ops sl_out_lumberjack_ops;
extern const struct sl_out_ops sl_out_tcp_ops;
extern const struct sl_out_ops sl_out_file_ops;   /* file and stdout */
#ifdef HAVE_RDKAFKA
extern const struct sl_out_ops sl_out_kafka_ops;  /* out_kafka.c */
/* --check of output.* for type kafka: topic template, key, and every
 * librdkafka property through rd_kafka_conf_set on a throwaway conf.
 * Returns 0 or SL_ECONFIG with "file:line: key: reason" in err. */
int sl_out_kafka_check(const struct sl_conf *c,
                       const struct sl_agent_conf *ac, char *err,
                       size_t errlen);
/* The librdkafka configuration the producer runs with (brokers, TLS,
 * SASL, properties), for `test output`; the caller owns *out
 * (rd_kafka_new takes it, else rd_kafka_conf_destroy). Declared as void
 * so that this header does not pull in librdkafka. */
int sl_out_kafka_conf(const struct sl_conf *c, const struct sl_agent_conf *ac,
                      void **out, char *err, size_t errlen);
#endif
#endif
