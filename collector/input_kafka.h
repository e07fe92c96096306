/* input_kafka.h - Kafka consumer-group input: take messages from Kafka
 * topics (librdkafka), turn each into one spooled event and tell Kafka a
 * message is done only once its event is in the spool and fsync'ed.
 *
 * Offsets: enable.auto.offset.store=false. A message's offset (+1) is
 * stored (rd_kafka_offsets_store) when the spool record holding it is
 * durable, in consumption order (a later record never stores before an
 * earlier one), and librdkafka commits stored offsets every
 * `commit_interval` (enable.auto.commit), in the revoke handler of a
 * rebalance (synchronously, before the partitions go) and at close. A
 * crash re-delivers what was consumed after the last commit; re-delivered
 * events dedupe in Elasticsearch by event.id (create + _id).
 *
 * Events: each message is one event, normalised as Lumberjack events are
 * (sl_input_event_normalize_ex: bytes kept, event.id and @timestamp
 * guaranteed). A message without event.id gets the xxh3-128 hex of
 * "<topic>/<partition>/<offset>", so a re-delivery gets the same id; one
 * without @timestamp gets the message's Kafka timestamp (the same at every
 * re-delivery), else the receive time. A message that is not one JSON
 * object, or is over `max_message_bytes`, becomes a dead-letter event
 * (dataset of `deadletter_index`, labels.kafka_topic/partition/offset, the
 * first 16 KiB of the original in event.original) and its offset is stored
 * like any other: a bad message never blocks its partition. So does an
 * event over the per-event limits the Lumberjack input also applies
 * (max_fields, max_depth, timestamp_max_future/past: input.h).
 *
 * Backpressure: when the spool refuses an append (full, disk full) every
 * assigned partition is paused (rd_kafka_pause_partitions) and the refused
 * records are held; the spool's resume callback (below its low-water mark)
 * appends them and resumes the partitions. Polling goes on while paused,
 * so the consumer stays in its group; messages librdkafka had fetched
 * before the pause are held too, bounded by queued.max.messages.kbytes.
 *
 * Loop integration: librdkafka runs its own threads. The consumer queue
 * writes a byte to a pipe when it gains events (rd_kafka_queue_io_event_
 * enable), a uv_poll on the pipe drains it with non-blocking
 * rd_kafka_consumer_poll calls (at most POLL_BUDGET messages per loop
 * iteration, a uv_idle carries on), and a 100 ms timer covers a missed
 * wake-up. Rebalance, commit and error callbacks run from those polls, on
 * the loop thread. The only blocking calls on the loop thread are the
 * synchronous commit in the revoke handler (one round trip) and
 * rd_kafka_new; rd_kafka_destroy runs on the threadpool.
 *
 * Threads: every function here is called on the loop thread.
 */
#ifndef SL_INPUT_KAFKA_H
#define SL_INPUT_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "sl_buf.h"
#include "sl_conf.h"
#include "spool.h"

struct sl_input_kafka;

struct sl_input_kafka_stats {
  uint64_t messages;        /* messages taken from Kafka */
  uint64_t bytes;           /* their payload bytes */
  uint64_t deadletters;     /* of those, spooled as dead letters */
  uint64_t records;         /* spool records appended */
  uint64_t stored;          /* records whose offsets were stored */
  uint64_t commits;         /* offset commits the group coordinator took */
  uint64_t commit_errors;   /* offset commits that failed */
  uint64_t rebalances;      /* assignments and revocations */
  uint64_t errors;          /* consumer errors reported by librdkafka */
  uint64_t partitions;      /* assigned now */
  int64_t lag;              /* sum over assigned partitions of high
                               watermark - position, of those where both
                               are known; -1 when none is */
  uint64_t paused;          /* 1 while the partitions are paused */
};

/* in: one normalised inputs[] object (type kafka). deadletter_index names
 * where malformed messages go (a logs-<dataset>-<namespace> name gives
 * their dataset and namespace; anything else: sluice.deadletter).
 * `index` numbers the input in metrics. */
int sl_input_kafka_new(uv_loop_t *loop, const json_t *in, size_t index,
                       const char *deadletter_index, struct sl_spool *spool,
                       struct sl_input_kafka **out, char *err,
                       size_t errlen);
/* The spool has room again: append held records, resume partitions. */
void sl_input_kafka_resume(struct sl_input_kafka *k);
void sl_input_kafka_stats(const struct sl_input_kafka *k,
                          struct sl_input_kafka_stats *st);
/* Prometheus lines for every input of the array (one header each). */
int sl_input_kafka_metrics(struct sl_input_kafka *const *ks, size_t n,
                           struct sl_buf *b) SL_WUR;
/* A JSON object for /debug/state: group, topics, paused, stats and each
 * assigned partition's position, high watermark and lag. New reference,
 * NULL for out of memory. */
json_t *sl_input_kafka_state(struct sl_input_kafka *k);
/* Stop taking messages, wait (up to timeout_ms) for records in the spool's
 * commit, store their offsets, leave the group (revoke handler commits),
 * destroy the consumer off the loop thread; cb once everything is closed.
 * Held records that never reached the spool are dropped: their offsets
 * were not stored, so Kafka re-delivers them. */
void sl_input_kafka_close(struct sl_input_kafka *k, uint64_t timeout_ms,
                          void (*cb)(void *arg), void *arg);

/* --check of inputs[idx] of type kafka (c's tree): brokers and topics
 * present, topic regexes valid, every `properties` entry known to
 * librdkafka with a valid value and not one sluice owns. SL_ECONFIG and
 * "file:line: inputs[i].key: reason" in err. */
int sl_input_kafka_check(const struct sl_conf *c, const json_t *in,
                         size_t idx, char *err, size_t errlen);

/* The librdkafka configuration the consumer of input `in` runs with
 * (`test output`): *out is an rd_kafka_conf_t * the caller owns
 * (rd_kafka_new takes it). 0, or SL_ECONFIG with "key: reason" in err. */
int sl_input_kafka_conf(const json_t *in, void **out, char *err,
                        size_t errlen);

#endif
