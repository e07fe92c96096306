/* sluice-kafka-mock: a Kafka cluster for tests, benchmarks and the demo.
 *
 * librdkafka's mock cluster (rdkafka_mock.h) speaks the Kafka protocol over
 * real TCP on 127.0.0.1, so the agent, the collector and kcat talk to it as
 * to a broker. No broker can be installed on the build machines; this is
 * the stand-in.
 *
 *   sluice-kafka-mock [--brokers N] [--topic NAME:PARTITIONS]...
 *
 * The first line on stdout is the bootstrap list ("127.0.0.1:p1,..."),
 * flushed at once. It runs until SIGTERM or SIGINT. Fault control, either
 * through signals or one command per line on stdin (each command answers
 * one line "ok" or "error: <reason>" on stdout):
 *
 *   SIGUSR1 / "down [ID]"            all brokers (or broker ID) refuse and
 *                                    drop connections
 *   SIGUSR2 / "up [ID]"              accept connections again
 *   "error API CODE [COUNT]"         the next COUNT (1) requests of Kafka
 *                                    API key API (0 = Produce) fail with
 *                                    error CODE (e.g. 29 = topic
 *                                    authorization failed, 10 = message
 *                                    too large); CODE -195 disconnects
 *   "rtt MS [ID]"                    delay every response by MS
 *   "topic NAME PARTITIONS"          create a topic
 *   "quit"                           stop, as SIGTERM
 *
 * End of stdin only stops the command reader; the cluster keeps running.
 * Messages live in memory until exit. Limits of the Debian 12 librdkafka
 * (2.0.2) mock are in tools/README.md. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_TOPICS 64

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t down_flag;
static volatile sig_atomic_t up_flag;

static void
on_signal(int sig)
{
  if (sig == SIGUSR1)
    down_flag = 1;
  else if (sig == SIGUSR2)
    up_flag = 1;
  else
    stop_flag = 1;
}

static void
usage(FILE *f)
{
  fprintf(f, "usage: sluice-kafka-mock [--brokers N] "
             "[--topic NAME:PARTITIONS]...\n"
             "prints the bootstrap list on the first stdout line; "
             "SIGUSR1 = brokers down, SIGUSR2 = up;\n"
             "stdin commands: down [ID] | up [ID] | "
             "error API CODE [COUNT] | rtt MS [ID] |\n"
             "                topic NAME PARTITIONS | quit\n");
}

static int
parse_int(const char *s, long lo, long hi, long *out)
{
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

static void __attribute__((format(printf, 1, 2)))
reply(const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

/* One stdin command; the answer goes to stdout so a test can wait for it
 * and know the fault is in place before it goes on. */
static void
run_command(rd_kafka_mock_cluster_t *mc, char *line)
{
  char *argv[5];
  int argc = 0;
  long a = -1, b = 0, c = 1;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

  for (char *tok = strtok(line, " \t\r\n"); tok && argc < 5;
       tok = strtok(NULL, " \t\r\n"))
    argv[argc++] = tok;
  if (argc == 0)
    return;
  if (!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) {
    if (argc > 1 && parse_int(argv[1], 1, 1000, &a) < 0) {
      reply("error: bad broker id %s\n", argv[1]);
      return;
    }
    err = argv[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)a)
                            : rd_kafka_mock_broker_set_up(mc, (int32_t)a);
  } else if (!strcmp(argv[0], "error")) {
    if (argc < 3 || parse_int(argv[1], 0, 100, &a) < 0 ||
        parse_int(argv[2], -200, 200, &b) < 0 ||
        (argc > 3 && parse_int(argv[3], 1, 1000000, &c) < 0)) {
      reply("error: usage: error API CODE [COUNT]\n");
      return;
    }
    /* The error stack is per request; a client that retries a retriable
     * code consumes one entry per attempt. */
    for (long i = 0; i < c; i++)
      rd_kafka_mock_push_request_errors(mc, (int16_t)a, 1,
                                        (rd_kafka_resp_err_t)b);
  } else if (!strcmp(argv[0], "rtt")) {
    if (argc < 2 || parse_int(argv[1], 0, 600000, &b) < 0 ||
        (argc > 2 && parse_int(argv[2], 1, 1000, &a) < 0)) {
      reply("error: usage: rtt MS [ID]\n");
      return;
    }
    err = rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b);
  } else if (!strcmp(argv[0], "topic")) {
    if (argc < 3 || parse_int(argv[2], 1, 10000, &b) < 0) {
      reply("error: usage: topic NAME PARTITIONS\n");
      return;
    }
    err = rd_kafka_mock_topic_create(mc, argv[1], (int)b, 1);
  } else if (!strcmp(argv[0], "quit")) {
    stop_flag = 1;
  } else {
    reply("error: unknown command %s\n", argv[0]);
    return;
  }
  if (err)
    reply("error: %s\n", rd_kafka_err2str(err));
  else
    reply("ok\n");
}

int
main(int argc, char **argv)
{
  const char *topics[MAX_TOPICS];
  int ntopics = 0;
  long brokers = 3;
  char errstr[512], line[1024];
  size_t linelen = 0;
  rd_kafka_conf_t *conf = NULL;
  rd_kafka_t *rk = NULL;
  rd_kafka_mock_cluster_t *mc = NULL;
  struct sigaction sa;
  int stdin_open = 1, rc = 1;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
      if (parse_int(argv[++i], 1, 64, &brokers) < 0) {
        fprintf(stderr, "sluice-kafka-mock: --brokers: 1..64\n");
        return 2;
      }
    } else if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
      if (ntopics == MAX_TOPICS) {
        fprintf(stderr, "sluice-kafka-mock: at most %d topics\n",
                MAX_TOPICS);
        return 2;
      }
      topics[ntopics++] = argv[++i];
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  /* No SA_RESTART: the signal must wake poll() below. librdkafka blocks
   * every signal in its own threads, so they all land in this one. */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* The handle is only the cluster's bookkeeping owner; it connects to
   * nothing, so its "no bootstrap.servers" warning is silenced. */
  conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof(errstr)))
    goto fail;
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk)
    goto fail;
  conf = NULL;
  mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
  if (!mc) {
    snprintf(errstr, sizeof(errstr), "cannot create the mock cluster");
    goto fail;
  }
  for (int i = 0; i < ntopics; i++) {
    char name[256];
    const char *colon = strrchr(topics[i], ':');
    long parts = 1;
    size_t n = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);

    if (n == 0 || n >= sizeof(name) ||
        (colon && parse_int(colon + 1, 1, 10000, &parts) < 0)) {
      snprintf(errstr, sizeof(errstr), "--topic %s: want NAME:PARTITIONS",
               topics[i]);
      goto fail;
    }
    memcpy(name, topics[i], n);
    name[n] = '\0';
    if (rd_kafka_mock_topic_create(mc, name, (int)parts, 1)) {
      snprintf(errstr, sizeof(errstr), "--topic %s: cannot create",
               topics[i]);
      goto fail;
    }
  }
  printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  while (!stop_flag) {
    struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
    int n = poll(&pfd, stdin_open ? 1 : 0, 200);

    if (down_flag) {
      down_flag = 0;
      rd_kafka_mock_broker_set_down(mc, -1);
    }
    if (up_flag) {
      up_flag = 0;
      rd_kafka_mock_broker_set_up(mc, -1);
    }
    if (n <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    ssize_t r = read(STDIN_FILENO, line + linelen,
                     sizeof(line) - 1 - linelen);
    if (r <= 0) {
      if (r < 0 && errno == EINTR)
        continue;
      stdin_open = 0;
      continue;
    }
    linelen += (size_t)r;
    line[linelen] = '\0';
    char *nl;
    while ((nl = memchr(line, '\n', linelen))) {
      size_t used = (size_t)(nl - line) + 1;
      *nl = '\0';
      run_command(mc, line);
      memmove(line, nl + 1, linelen - used);
      linelen -= used;
      line[linelen] = '\0';
    }
    if (linelen == sizeof(line) - 1)
      linelen = 0;  /* an overlong line is not a command: drop it */
  }
  rc = 0;
  goto done;

fail:
  fprintf(stderr, "sluice-kafka-mock: %s\n", errstr);
done:
  if (mc)
    rd_kafka_mock_cluster_destroy(mc);
  if (rk)
    rd_kafka_destroy(rk);
  if (conf)
    rd_kafka_conf_destroy(conf);
  return rc;
}
