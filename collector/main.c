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

/* Subcommands: `sluice-collector -c FILE NAME ARGS...` runs NAME with the
 * loaded, checked config instead of the daemon; returns the exit code. */
struct subcmd {
  const char *name;
  int (*run)(const struct sl_conf *conf, int argc, char **argv);
};

static const struct subcmd subcmds[] = {
  { "retention", sl_retention_cli },
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
  const struct subcmd *sub = NULL;
  struct sl_cli cli;
  struct sl_conf *conf = NULL;
  char err[1024];
  int rc, lvl;

  rc = sl_cli_parse(argc, argv, "sluice-collector", SL_COLLECTOR_DEFAULT_CONFIG,
                    sl_collector_schema, SL_CLI_F_TLS, &cli);
  if (rc >= 1000)
    return SL_CLI_EXIT(rc);
  if (rc != 0)
    return 2;
  if (cli.argc > 0) {
    for (sub = subcmds; sub->name; sub++)
      if (strcmp(sub->name, cli.argv[0]) == 0)
        break;
    if (!sub->name) {
      fprintf(stderr, "sluice-collector: unknown subcommand '%s'\n",
              cli.argv[0]);
      return 2;
    }
  }

  err[0] = '\0';
  rc = sl_conf_load(cli.config_path, sl_collector_schema, &conf, err,
                    sizeof(err));
  if (rc == 0)
    rc = sl_collector_conf_check(conf, err, sizeof(err));
  if (rc != 0) {
    fprintf(stderr, "%s\n", err[0] ? err : sl_strerror(rc));
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
  if (sub) {
    rc = sub->run(conf, cli.argc, cli.argv);
    sl_conf_free(conf);
    return rc;
  }

  for (;;) {
    struct sl_conf *next = NULL;

    rc = sl_collector_run(conf, &next);
    sl_conf_free(conf);
    if (next == NULL || rc != 0) {
      sl_conf_free(next);
      return rc;
    }
    conf = next;
    lvl = sl_log_level_parse(sl_conf_str(sl_conf_root(conf), "log_level"));
    if (cli.log_level < 0 && lvl >= 0)
      sl_log_set_level((enum sl_log_level)lvl);
  }
}
