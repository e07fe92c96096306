/* tools.h - the agent's operator subcommands, run by main.c instead of the
 * agent (`sluice-agent -c FILE <subcommand> ...`). Each takes the loaded,
 * checked config (borrowed) and its own arguments (argv[0] is the
 * subcommand name), prints to stdout/stderr and returns the process exit
 * code. Neither reads nor writes the registry, and neither ships an event.
 *
 *   status [--json]
 *       GET /debug/state from the running agent on http.listen (0.0.0.0
 *       and :: are asked on loopback) and print it as it came (--json,
 *       like the collector's) or as a table: the output
 *       (targets, ready, connections, in flight, last ack, last error),
 *       the queue and every file (state, size, acked offset, lag, last
 *       read, dataset, path). Exit 0: the agent runs and its output is
 *       ready; 1: it runs but the output is not ready (or it is draining);
 *       2: no agent answers there (or http.listen is off, or a usage or
 *       config error).
 *
 *   test output
 *       Check the configured output the way `filebeat test output` does,
 *       step by step, each step "... OK" or "... ERROR reason":
 *       lumberjack/tcp per host: parse host, dns lookup, dial up, TLS
 *       handshake (lumberjack with output.ssl; version and peer shown),
 *       talk to server (the receiver keeps the connection open for a
 *       moment and sends nothing that is not Lumberjack: a refused client
 *       certificate or peer name shows here; no frame and no event are
 *       sent). file: the directory exists and is writable, the file is
 *       appendable (nothing is created or written). stdout: always OK.
 *       kafka: a metadata request to the brokers with the output's own
 *       librdkafka settings (TLS, SASL), and the topic when it is not a
 *       template. Exit 0 when every step passed, 1 when one failed (the
 *       failing step is named on stdout), 2 on a usage/config error.
 */
#ifndef SL_AGENT_TOOLS_H
#define SL_AGENT_TOOLS_H

#include "sl_conf.h"

int sl_agent_status_main(const struct sl_conf *conf, int argc, char **argv);
int sl_agent_test_main(const struct sl_conf *conf, int argc, char **argv);

#endif
