/* sluice-collector: receive, spool, index. */
#include <stdio.h>
#include <stdlib.h>

#include "collector.h"
#include "config.h"
#include "sl_cli.h"
#include "sl_conf.h"
#include "sl_err.h"
#include "sl_log.h"

int
main(int argc, char **argv)
{
  struct sl_cli cli;
  struct sl_conf *conf = NULL, *prev = NULL;
  char err[1024];
  int rc, lvl;

  rc = sl_cli_parse(argc, argv, "sluice-collector", SL_COLLECTOR_DEFAULT_CONFIG,
                    sl_collector_schema, SL_CLI_F_TLS, &cli);
  if (rc >= 1000)
    return SL_CLI_EXIT(rc);
  if (rc != 0)
    return 2;
  if (cli.argc > 0) {
    fprintf(stderr, "sluice-collector: unknown subcommand '%s'\n", cli.argv[0]);
    return 2;
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
    printf("%s: config ok\n", cli.config_path);
    sl_conf_free(conf);
    return 0;
  }
  lvl = cli.log_level >= 0
            ? cli.log_level
            : sl_log_level_parse(sl_conf_str(sl_conf_root(conf), "log_level"));
  if (lvl >= 0)
    sl_log_set_level((enum sl_log_level)lvl);

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
  }
}
