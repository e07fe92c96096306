/* sl_cli.h - the command line both binaries share.
 *
 *   PROG [-c FILE] [--check] [--version] [--help] [--log-level L]
 *        [--log-format json|text] [SUBCMD ARGS...]
 *
 * `--help` prints usage, the commands the binary accepts, and the schema
 * table (sl_conf_print_help).
 * `--version` prints "PROG VERSION" and the features that binary really
 * has ("features: tls libdeflate inotify", or "features: none"): a
 * feature is listed only when it is compiled in AND the binary uses it,
 * so a linked library that no code path uses is never advertised.
 */
#ifndef SL_CLI_H
#define SL_CLI_H

#include "sl_conf.h"

struct sl_cli {
  const char *config_path;  /* -c / --config; default given to sl_cli_parse */
  int check;                /* --check */
  int log_level;            /* --log-level, or -1 when not given */
  int log_format;           /* --log-format (enum sl_log_format), or -1 */
  int argc;                 /* remaining positional args (subcommand...) */
  char **argv;
};

/* Optional features a binary may report; pass the ones it uses. */
enum sl_cli_feature {
  SL_CLI_F_TLS = 1u << 0,        /* TLS on its connections (OpenSSL) */
  SL_CLI_F_LIBDEFLATE = 1u << 1, /* libdeflate for compression */
  SL_CLI_F_INOTIFY = 1u << 2,    /* inotify file discovery */
  SL_CLI_F_ISAL = 1u << 3,       /* ISA-L igzip for compression */
};

/* One subcommand for --help: "status", "show files, offsets and lag". */
struct sl_cli_command {
  const char *name;   /* as typed, with its own words ("test output") */
  const char *help;   /* one line */
};

/* Returns 0 to continue, or an exit code >= 0 offset by 1000 when the
 * program should exit now (--help/--version printed: 1000; usage error:
 * 1002) -- use SL_CLI_EXIT(rc) to get the code. `commands` (NULL or ended
 * by a { NULL, NULL } entry) is only printed by --help; matching the
 * subcommand stays with the caller. */
#define SL_CLI_EXIT(rc) ((rc) - 1000)
int sl_cli_parse(int argc, char **argv, const char *prog,
                 const char *default_config,
                 const struct sl_conf_key *schema,
                 const struct sl_cli_command *commands, unsigned features,
                 struct sl_cli *out);
/* The features of `wanted` (SL_CLI_F_* bits) that are compiled in, space
 * separated, or "none": written to buf (truncated to len), which is
 * returned. */
const char *sl_cli_features(unsigned wanted, char *buf, size_t len);

#endif
