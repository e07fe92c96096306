/* main.c - sluice-agent: command line, config, run. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "agent.h"
#include "config.h"
#include "sl_cli.h"
#include "sl_conf.h"
#include "sl_err.h"
#include "sl_log.h"
#include "tools.h"

/* Subcommands (tools.h), run instead of the agent on the same checked
 * config; no subcommand (or `run`) ships. Anything else is refused before
 * the agent starts, so a typo never becomes a second shipper. */
static const struct {
  const char *name;
  int (*run)(const struct sl_conf *conf, int argc, char **argv);
} subcmds[] = {
  { "run", NULL },
  { "status", sl_agent_status_main },
  { "test", sl_agent_test_main },
};

/* What --help lists; keep in step with subcmds[]. */
static const struct sl_cli_command help_commands[] = {
  { "run", "ship the configured inputs (the default)" },
  { "status [--json]", "the running agent: files, offsets, lag, output" },
  { "test output", "connect and handshake with the output (exit 0/1)" },
  { NULL, NULL },
};

/* Self-log format: --log-format wins over the file's log_format. */
static void
apply_log_format(const struct sl_cli *cli, const struct sl_conf *conf)
{
  int f = cli->log_format;

  if (f < 0 && conf)
    f = sl_log_format_parse(sl_conf_str(sl_conf_root(conf), "log_format"));
  if (f >= 0)
    sl_log_set_format((enum sl_log_format)f);
}

int
main(int argc, char **argv)
{
  struct sl_cli cli;
  struct sl_conf *conf = NULL, *prev = NULL;
  struct sl_agent *agent = NULL;
  char err[1024];
  const char *lvl;
  int rc, code, found = 0;
  int (*run)(const struct sl_conf *, int, char **) = NULL;
  size_t i;

  rc = sl_cli_parse(argc, argv, "sluice-agent", "/etc/sluice/agent.yml",
                    sl_agent_schema, help_commands,
                    SL_CLI_F_TLS | SL_CLI_F_LIBDEFLATE | SL_CLI_F_ISAL |
                    SL_CLI_F_INOTIFY, &cli);
  if (rc >= 1000)
    return SL_CLI_EXIT(rc);
  if (rc != 0)
    return 2;
  for (i = 0; cli.argc > 0 && i < sizeof subcmds / sizeof subcmds[0]; i++)
    if (strcmp(cli.argv[0], subcmds[i].name) == 0) {
      run = subcmds[i].run;
      found = 1;
    }
  if (cli.argc > 0 && (!found || (run == NULL && cli.argc > 1))) {
    fprintf(stderr, "sluice-agent: unknown %s '%s' (commands: run, status, "
            "test output; see --help)\n", found ? "argument" : "subcommand",
            cli.argv[found ? 1 : 0]);
    return 2;
  }
  if (cli.log_level >= 0)
    sl_log_set_level((enum sl_log_level)cli.log_level);
  apply_log_format(&cli, NULL);

  /* --check and start-up alike: every error of the file, then exit 2. */
  err[0] = '\0';
  rc = sl_conf_load_all(cli.config_path, sl_agent_schema, &conf, err,
                        sizeof(err));
  if (conf != NULL && sl_agent_check(conf, err, sizeof(err)) != 0 &&
      rc == 0)
    rc = SL_ECONFIG;
  if (rc) {
    sl_conf_report(stderr, cli.config_path, conf,
                   err[0] ? err : sl_strerror(rc));
    sl_conf_free(conf);
    return 2;
  }
  if (cli.check) {
    printf("%s: config ok\n", cli.config_path);
    sl_conf_free(conf);
    return 0;
  }
  apply_log_format(&cli, conf);
  if (run) {
    /* A tool's own output is what matters; the self-log only warns. */
    if (cli.log_level < 0)
      sl_log_set_level(SL_LOG_WARN);
    rc = run(conf, cli.argc, cli.argv);
    sl_conf_free(conf);
    return rc;
  }
  /* Block the signals the agent handles; sl_agent_run() opens them only
   * while its handlers are installed. Between two agents (reload) a
   * SIGTERM then waits instead of killing the process with the default
   * action, and the worker threads inherit the mask, so the loop thread
   * is the one that receives them. */
  {
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &ss, NULL);
  }
  for (;;) {
    lvl = sl_conf_str(sl_conf_root(conf), "log_level");
    if (cli.log_level < 0 && lvl && sl_log_level_parse(lvl) >= 0)
      sl_log_set_level((enum sl_log_level)sl_log_level_parse(lvl));
    apply_log_format(&cli, conf);
    rc = sl_agent_new(conf, &agent, err, sizeof(err));
    if (rc && prev) {
      /* The new file was valid but does not start (a port in use...):
       * go back to the config that ran. */
      sl_log(SL_LOG_ERROR, "agent", "reload failed, restarting with the "
             "previous config", SL_LF_STR, "reason", err, SL_LF_ERR, rc,
             SL_LF_END);
      sl_conf_free(conf);
      conf = prev;
      prev = NULL;
      continue;
    }
    sl_conf_free(prev);
    prev = NULL;
    if (rc) {
      sl_log(SL_LOG_ERROR, "agent", "cannot start", SL_LF_STR, "reason",
             err, SL_LF_ERR, rc, SL_LF_END);
      sl_conf_free(conf);
      return rc == SL_ECONFIG ? 2 : 1;
    }
    code = sl_agent_run(agent);
    sl_agent_free(agent);
    agent = NULL;
    if (code != SL_AGENT_RELOAD)
      break;
    prev = conf;
    conf = NULL;
    err[0] = '\0';
    rc = sl_conf_load(cli.config_path, sl_agent_schema, &conf, err,
                      sizeof(err));
    if (rc) {
      /* Changed again since SIGHUP checked it: keep the old one. */
      sl_log(SL_LOG_ERROR, "agent", "reload: config became invalid, "
             "keeping the previous one", SL_LF_STR, "reason", err,
             SL_LF_END);
      conf = prev;
      prev = NULL;
    } else {
      sl_log(SL_LOG_INFO, "agent", "reloaded config", SL_LF_STR, "file",
             cli.config_path, SL_LF_END);
    }
  }
  sl_conf_free(conf);
  return code;
}
