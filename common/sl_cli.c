#include "sl_cli.h"
#include "sl_config.h"
#include "sl_log.h"

#include <stdio.h>
#include <string.h>

#define CLI_DONE 1000   /* exit 0 after --help / --version */
#define CLI_USAGE 1002  /* exit 2: bad command line (like a bad config) */

/* Every optional feature, and whether sl_config.h says it is built in. */
static const struct {
  unsigned flag;
  const char *name;
  int built;
} feature_table[] = {
  { SL_CLI_F_TLS, "tls",
#ifdef HAVE_OPENSSL
    1
#else
    0
#endif
  },
  { SL_CLI_F_LIBDEFLATE, "libdeflate",
#ifdef HAVE_LIBDEFLATE
    1
#else
    0
#endif
  },
  { SL_CLI_F_ISAL, "isa-l",
#ifdef HAVE_ISAL
    1
#else
    0
#endif
  },
  { SL_CLI_F_INOTIFY, "inotify",
#ifdef HAVE_INOTIFY
    1
#else
    0
#endif
  },
};

const char *
sl_cli_features(unsigned wanted, char *buf, size_t len)
{
  size_t i, n = 0;
  int w, any = 0;

  if (len == 0)
    return buf;
  buf[0] = '\0';
  for (i = 0; i < sizeof(feature_table) / sizeof(feature_table[0]); i++) {
    if (!feature_table[i].built || !(wanted & feature_table[i].flag))
      continue;
    any = 1;
    w = snprintf(buf + n, len - n, "%s%s", n ? " " : "",
                 feature_table[i].name);
    if (w < 0 || (size_t)w >= len - n) {
      buf[n] = '\0';   /* whole words only */
      break;
    }
    n += (size_t)w;
  }
  if (!any)
    snprintf(buf, len, "none");
  return buf;
}

static void
usage_line(FILE *fp, const char *prog)
{
  fprintf(fp, "usage: %s [-c FILE] [--check] [--version] [--help] "
          "[--log-level LEVEL] [--log-format json|text] [COMMAND ARGS...]\n",
          prog);
}

static void
print_help(const char *prog, const char *default_config,
           const struct sl_conf_key *schema,
           const struct sl_cli_command *commands)
{
  usage_line(stdout, prog);
  if (commands != NULL && commands[0].name != NULL) {
    printf("\ncommands:\n");
    for (; commands->name != NULL; commands++)
      printf("  %-20s %s\n", commands->name,
             commands->help ? commands->help : "");
  }
  printf("\noptions:\n"
         "  -c, --config FILE    configuration file (default %s)\n"
         "  --check              validate the configuration and exit "
         "(0 good, 2 bad)\n"
         "  --log-level LEVEL    debug, info, warn or error (overrides "
         "the file)\n"
         "  --log-format FMT     self-log lines on stderr: json (default) "
         "or text\n"
         "  --version            print version and the features built in\n"
         "  -h, --help           print this help\n",
         default_config ? default_config : "(none)");
  if (schema != NULL) {
    printf("\nconfiguration keys:\n");
    sl_conf_print_help(stdout, schema);
  }
  fflush(stdout);
}

static int
usage_error(const char *prog, const char *what, const char *arg)
{
  fprintf(stderr, "%s: %s%s%s\n", prog, what, arg ? ": " : "",
          arg ? arg : "");
  usage_line(stderr, prog);
  return CLI_USAGE;
}

/* Value of an option given as "--opt VALUE", "--opt=VALUE" or "-cVALUE".
 * `name` is the option text without any "=value" part. Returns NULL and
 * leaves *i alone when the option does not match. */
static const char *
opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
  const char *a = argv[*i];
  size_t n = strlen(name);

  *missing = 0;
  if (strncmp(a, name, n) != 0)
    return NULL;
  if (a[n] == '=' && name[1] == '-')
    return a + n + 1;
  if (a[n] != '\0') {
    /* Short options glue their value: "-cFILE". */
    if (name[1] != '-')
      return a + n;
    return NULL;
  }
  if (*i + 1 >= argc) {
    *missing = 1;
    return NULL;
  }
  (*i)++;
  return argv[*i];
}

int
sl_cli_parse(int argc, char **argv, const char *prog,
             const char *default_config,
             const struct sl_conf_key *schema,
             const struct sl_cli_command *commands, unsigned features,
             struct sl_cli *out)
{
  char feat[64];
  const char *v;
  int i, missing, lvl;

  memset(out, 0, sizeof(*out));
  out->config_path = default_config;
  out->log_level = -1;
  out->log_format = -1;
  if (prog == NULL)
    prog = argc > 0 && argv[0] ? argv[0] : "sluice";
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];

    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    /* The first word that is not an option starts the subcommand; its
     * own flags (replay --from DIR) are left for it. */
    if (a[0] != '-' || a[1] == '\0')
      break;
    if (strcmp(a, "--check") == 0) {
      out->check = 1;
    } else if (strcmp(a, "--version") == 0) {
      printf("%s %s\nfeatures: %s\n", prog, SL_VERSION,
             sl_cli_features(features, feat, sizeof(feat)));
      fflush(stdout);
      return CLI_DONE;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      print_help(prog, default_config, schema, commands);
      return CLI_DONE;
    } else if ((v = opt_value(argc, argv, &i, "--config", &missing)) ||
               missing ||
               (v = opt_value(argc, argv, &i, "-c", &missing)) || missing) {
      if (v == NULL || *v == '\0')
        return usage_error(prog, "option needs a file", a);
      out->config_path = v;
    } else if ((v = opt_value(argc, argv, &i, "--log-level", &missing)) ||
               missing) {
      if (v == NULL)
        return usage_error(prog, "option needs a level", a);
      lvl = sl_log_level_parse(v);
      if (lvl < 0)
        return usage_error(prog, "unknown log level (debug, info, warn, "
                           "error)", v);
      out->log_level = lvl;
    } else if ((v = opt_value(argc, argv, &i, "--log-format", &missing)) ||
               missing) {
      if (v == NULL || sl_log_format_parse(v) < 0)
        return usage_error(prog, "option needs a format (json, text)",
                           v ? v : a);
      out->log_format = sl_log_format_parse(v);
    } else {
      return usage_error(prog, "unknown option", a);
    }
  }
  out->argc = argc - i;
  out->argv = argv + i;
  return 0;
}
