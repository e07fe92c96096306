/* sluice-collector: receive, spool, index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "config.h"
#include "retention.h"
#include "sl_cli.h"
#include "sl_conf.h"
#include "sl_err.h"
#include "sl_log.h"
#include "tools.h"

/* Subcommands run instead of the collector, on the same checked config
 * (tools.h). */
static const struct {
  const char *name;
  int (*run)(const struct sl_conf *conf, int argc, char **argv);
} subcmds[] = {
  { "replay", sl_replay_main },
  { "trace", sl_trace_main },
  { "retention", sl_retention_cli },
  { "test", sl_collector_test_main },
  { "status", sl_status_main },
};

/* What --help lists; keep in step with subcmds[]. */
static const struct sl_cli_command help_commands[] = {
  { "replay --from DIR", "re-index archived events (--dataset, --since, "
    "--until)" },
  { "trace ID", "every event of one trace or request id, in order" },
  { "retention plan|apply", "show or run the retention job" },
  { "test output", "check Elasticsearch, Kafka inputs, dirs (exit 0/1)" },
  { "status [--json]", "the running collector: agents, spool, ES" },
  { NULL, NULL },
};

/* --check: problems that do not make the config invalid. */
static void
print_warnings(const struct sl_conf *conf)
{
  struct sl_retention_conf rc;
  char err[1024], warn[4096], *line, *save = NULL;

  if (sl_retention_conf_fill(conf, &rc, err, sizeof err, warn,
                             sizeof warn) != 0)
    return;
  sl_retention_conf_free(&rc);
  for (line = strtok_r(warn, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save))
    fprintf(stderr, "warning: %s\n", line);
}

int
main(int argc, char **argv)
{
  struct sl_cli cli;
  struct sl_conf *conf = NULL, *prev = NULL;
  char err[1024];
  int rc, lvl;
  int (*run)(const struct sl_conf *, int, char **) = NULL;
  size_t i;

  rc = sl_cli_parse(argc, argv, "sluice-collector", SL_COLLECTOR_DEFAULT_CONFIG,
                    sl_collector_schema, help_commands, SL_CLI_F_TLS,
                    &cli);
  if (rc >= 1000)
    return SL_CLI_EXIT(rc);
  if (rc != 0)
    return 2;
  for (i = 0; cli.argc > 0 && i < sizeof subcmds / sizeof subcmds[0]; i++)
    if (strcmp(cli.argv[0], subcmds[i].name) == 0)
      run = subcmds[i].run;
  if (cli.argc > 0 && run == NULL) {
    fprintf(stderr, "sluice-collector: unknown subcommand '%s' (commands: "
            "replay, trace, retention, test output, status; see --help)\n",
            cli.argv[0]);
    return 2;
  }

  /* --check and start-up alike: every error of the file, then exit 2. */
  err[0] = '\0';
  rc = sl_conf_load_all(cli.config_path, sl_collector_schema, &conf, err,
                        sizeof(err));
  if (conf != NULL && sl_collector_conf_check(conf, err, sizeof(err)) != 0 &&
      rc == 0)
    rc = SL_ECONFIG;
  if (rc != 0) {
    sl_conf_report(stderr, cli.config_path, conf,
                   err[0] ? err : sl_strerror(rc));
    sl_conf_free(conf);
    return 2;
  }
  if (cli.check) {
    print_warnings(conf);
    printf("%s: config ok\n", cli.config_path);
    sl_conf_free(conf);
    return 0;
  }
  lvl = cli.log_level >= 0
            ? cli.log_level
            : sl_log_level_parse(sl_conf_str(sl_conf_root(conf), "log_level"));
  if (lvl >= 0)
    sl_log_set_level((enum sl_log_level)lvl);
  lvl = cli.log_format >= 0
            ? cli.log_format
            : sl_log_format_parse(sl_conf_str(sl_conf_root(conf),
                                              "log_format"));
  if (lvl >= 0)
    sl_log_set_format((enum sl_log_format)lvl);
  if (run) {
    /* A tool's own output is what matters; the self-log only warns. */
    if (cli.log_level < 0)
      sl_log_set_level(SL_LOG_WARN);
    rc = run(conf, cli.argc, cli.argv);
    sl_conf_free(conf);
    return rc;
  }

  for (;;) {
    struct sl_conf *next = NULL;

    rc = sl_collector_run(conf, &next, err, sizeof(err));
    if (rc == SL_COLLECTOR_START_FAILED && prev != NULL) {
      /* A reload whose config passed --check but cannot start: go on with
       * the one that was running (its own listeners were closed by the
       * drain, so it can bind them again). */
      sl_log(SL_LOG_ERROR, "collector", "SIGHUP: reload failed, the new "
             "config cannot start; keeping the running one", SL_LF_STR,
             "reason", err, SL_LF_STR, "config", cli.config_path, SL_LF_END);
      sl_conf_free(conf);
      conf = prev;
      prev = NULL;
      continue;
    }
    sl_conf_free(prev);
    prev = NULL;
    if (next == NULL || rc != 0) {
      sl_conf_free(conf);
      sl_conf_free(next);
      return rc;
    }
    /* Kept until the next run has started. */
    prev = conf;
    conf = next;
    lvl = sl_log_level_parse(sl_conf_str(sl_conf_root(conf), "log_level"));
    if (cli.log_level < 0 && lvl >= 0)
      sl_log_set_level((enum sl_log_level)lvl);
    lvl = sl_log_format_parse(sl_conf_str(sl_conf_root(conf), "log_format"));
    if (cli.log_format < 0 && lvl >= 0)
      sl_log_set_format((enum sl_log_format)lvl);
  }
}
