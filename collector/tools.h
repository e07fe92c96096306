/* tools.h - the collector's operator subcommands, run instead of the
 * collector by main.c (`sluice-collector -c FILE <subcommand> ...`). Each
 * takes the loaded, checked config (borrowed) and its own arguments
 * (argv[0] is the subcommand name), prints to stdout/stderr and returns
 * the process exit code: 0 success, 1 the work failed, 2 usage/config.
 *
 *   replay --from DIR [--dataset D] [--since T] [--until T]
 *       Re-index archive files (archive.h) into the configured
 *       Elasticsearch through the collector's own indexer (create with
 *       _id = event.id, so a second replay finds every event present).
 *       Sidecars let it skip files outside [since, until]; events are
 *       filtered by @timestamp too. T: RFC 3339 or epoch. A progress line
 *       every second on stderr, the counts at the end on stdout; exit 1
 *       when any event failed (dead-lettered) or a file could not be read.
 *
 *   trace ID [--json] [--archive DIR]
 *       Every event whose trace.id, transaction.id or http.request.id is
 *       ID, in @timestamp order: from Elasticsearch (logs-*, or
 *       <index_prefix>-* in daily mode) when configured and no --archive
 *       is given, else from the archive (--archive DIR or archive.path).
 *       Text: one line per event, "time host service level message",
 *       the message indented two spaces per span level where span.id /
 *       parent.id link events. --json: the events as NDJSON. Exit 1 when
 *       nothing was found or the source failed.
 *
 *   test output
 *       Check, as `filebeat test output` does, each Elasticsearch host
 *       (talk to server, authentication, X-Elastic-Product, version >= 8,
 *       the user and its privileges when security answers; through the
 *       collector's own es_client), the archive and data_dir directories
 *       (writable, or creatable), and each Kafka input's brokers and
 *       topics (metadata request with the consumer's own settings).
 *       One line per step, "... OK" or "... ERROR reason"; exit 0 when
 *       every step passed, 1 when one failed. Nothing is written.
 *   status [--json]
 *       Asks the running collector at http.listen (a wildcard address
 *       means this host) for /debug/state and prints what the status page
 *       shows: intake and an agents table (events, rate, lag), spool fill,
 *       Elasticsearch health, item outcomes, retries, dead letters,
 *       retention, archive (--json: the state as it came). Exit 0 when it
 *       answered and is ready (what /ready says), 1 when it answered and
 *       is not ready (Elasticsearch down, spool full, archive failing,
 *       draining), 2 when it did not answer within 5 s (or usage/config).
 */
#ifndef SL_COLLECTOR_TOOLS_H
#define SL_COLLECTOR_TOOLS_H

#include "sl_conf.h"

int sl_replay_main(const struct sl_conf *conf, int argc, char **argv);
int sl_trace_main(const struct sl_conf *conf, int argc, char **argv);
int sl_collector_test_main(const struct sl_conf *conf, int argc,
                           char **argv);
int sl_status_main(const struct sl_conf *conf, int argc, char **argv);

#endif
