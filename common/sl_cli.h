/* sl_cli.h - the command line both binaries share.
 *
 *   PROG [-c FILE] [--check] [--version] [--help] [--log-level L] [SUBCMD ARGS...]
 *
 * `--help` prints usage plus the schema table (sl_conf_print_help).
 * `--version` prints "PROG VERSION" and the compiled-in features
 * ("features: tls kafka inotify ...").
 */
#ifndef SL_CLI_H
#define SL_CLI_H

#include "sl_conf.h"

struct sl_cli {
  const char *config_path;  /* -c / --config; default given to sl_cli_parse */
  int check;                /* --check */
  int log_level;            /* --log-level, or -1 when not given */
  int argc;                 /* remaining positional args (subcommand...) */
  char **argv;
};

/* Returns 0 to continue, or an exit code >= 0 offset by 1000 when the
 * program should exit now (--help/--version printed: 1000; usage error:
 * 1002) -- use SL_CLI_EXIT(rc) to get the code. */
#define SL_CLI_EXIT(rc) ((rc) - 1000)
int sl_cli_parse(int argc, char **argv, const char *prog,
                 const char *default_config,
                 const struct sl_conf_key *schema, struct sl_cli *out);
/* Features compiled in, space separated (from sl_config.h). */
const char *sl_cli_features(void);

#endif
