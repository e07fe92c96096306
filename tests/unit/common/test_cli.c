#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_cli.h"
#include "sl_config.h"
#include "sl_log.h"

static const struct sl_cli_command commands[] = {
  { "status", "show the running one" },
  { "test output", "connect, exit 0 or 1" },
  { NULL, NULL },
};

static const struct sl_conf_key schema[] = {
  { "data_dir", SL_CT_STR, NULL, "where state lives", NULL, NULL,
    SL_CK_REQUIRED },
  SL_CONF_END
};

/* The features run() passes, as a binary would. */
static unsigned run_features = SL_CLI_F_TLS | SL_CLI_F_LIBDEFLATE |
                               SL_CLI_F_INOTIFY;

/* Run sl_cli_parse on a NULL-terminated word list, capturing stdout and
 * stderr into out/errout. */
static int
run(struct sl_cli *cli, char *out, size_t outlen, char *errout,
    size_t errlen, ...)
{
  static char *argv[32];
  FILE *fo = tmpfile(), *fe = tmpfile();
  int argc = 0, rc, so, se;
  size_t n;
  va_list ap;
  char *w;

  assert_non_null(fo);
  assert_non_null(fe);
  argv[argc++] = (char *)"sluice-test";
  va_start(ap, errlen);
  while ((w = va_arg(ap, char *)) != NULL)
    argv[argc++] = w;
  va_end(ap);
  argv[argc] = NULL;
  fflush(stdout);
  fflush(stderr);
  so = dup(1);
  se = dup(2);
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  rc = sl_cli_parse(argc, argv, "sluice-test", "/etc/sluice/test.yml",
                    schema, commands, run_features, cli);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  fseek(fo, 0, SEEK_SET);
  n = fread(out, 1, outlen - 1, fo);
  out[n] = '\0';
  fseek(fe, 0, SEEK_SET);
  n = fread(errout, 1, errlen - 1, fe);
  errout[n] = '\0';
  fclose(fo);
  fclose(fe);
  return rc;
}

static char o[8192], e[8192];

static void
test_defaults(void **state)
{
  struct sl_cli c;

  (void)state;
  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e), NULL), 0);
  assert_string_equal(c.config_path, "/etc/sluice/test.yml");
  assert_int_equal(c.check, 0);
  assert_int_equal(c.log_level, -1);
  assert_int_equal(c.argc, 0);
  assert_string_equal(o, "");
  assert_string_equal(e, "");
}

static void
test_options_and_subcommand(void **state)
{
  struct sl_cli c;

  (void)state;
  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e), "-c", "a.yml",
                       "--check", "--log-level", "debug", "replay",
                       "--from", "/arch", "--since", "2024-01-01", NULL), 0);
  assert_string_equal(c.config_path, "a.yml");
  assert_int_equal(c.check, 1);
  assert_int_equal(c.log_level, SL_LOG_DEBUG);
  /* The subcommand keeps its own flags. */
  assert_int_equal(c.argc, 5);
  assert_string_equal(c.argv[0], "replay");
  assert_string_equal(c.argv[1], "--from");
  assert_string_equal(c.argv[4], "2024-01-01");

  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e), "--config=b.yml",
                       "--log-level=warning", NULL), 0);
  assert_string_equal(c.config_path, "b.yml");
  assert_int_equal(c.log_level, SL_LOG_WARN);
  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e), "-cc.yml",
                       "--config", "d.yml", NULL), 0);
  assert_string_equal(c.config_path, "d.yml");
  /* "--" ends the options. */
  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e), "--", "-x", NULL), 0);
  assert_int_equal(c.argc, 1);
  assert_string_equal(c.argv[0], "-x");
  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e), "trace", "abc",
                       NULL), 0);
  assert_int_equal(c.argc, 2);
  assert_string_equal(c.argv[1], "abc");
}

static void
test_usage_errors(void **state)
{
  struct sl_cli c;
  int rc;

  (void)state;
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--bogus", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 2);
  assert_non_null(strstr(e, "unknown option: --bogus"));
  assert_non_null(strstr(e, "usage: sluice-test"));
  rc = run(&c, o, sizeof(o), e, sizeof(e), "-c", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 2);
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--config=", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 2);
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--log-level", "loud", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 2);
  assert_non_null(strstr(e, "unknown log level"));
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--log-level", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 2);
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--log-format", "xml", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 2);
  assert_non_null(strstr(e, "json, text"));
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--log-format", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 2);
  assert_string_equal(o, "");
}

static void
test_log_format(void **state)
{
  struct sl_cli c;

  (void)state;
  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e), NULL), 0);
  assert_int_equal(c.log_format, -1);
  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e), "--log-format",
                       "text", "status", NULL), 0);
  assert_int_equal(c.log_format, SL_LOG_FMT_TEXT);
  assert_int_equal(c.argc, 1);
  assert_int_equal(run(&c, o, sizeof(o), e, sizeof(e),
                       "--log-format=json", NULL), 0);
  assert_int_equal(c.log_format, SL_LOG_FMT_JSON);
}

static void
test_version(void **state)
{
  const unsigned all = SL_CLI_F_TLS | SL_CLI_F_LIBDEFLATE | SL_CLI_F_INOTIFY;
  struct sl_cli c;
  char want[512], f[64];
  int rc;

  (void)state;
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--check", "--version", NULL);
  assert_true(rc >= 1000);
  assert_int_equal(SL_CLI_EXIT(rc), 0);
  snprintf(want, sizeof(want), "sluice-test %s\nfeatures: %s\n", SL_VERSION,
           sl_cli_features(all, f, sizeof(f)));
  assert_string_equal(o, want);
#ifdef HAVE_INOTIFY
  assert_non_null(strstr(f, "inotify"));
#endif
#ifdef HAVE_OPENSSL
  assert_non_null(strstr(f, "tls"));
#else
  assert_null(strstr(f, "tls"));
#endif
#ifndef HAVE_LIBDEFLATE
  assert_null(strstr(f, "libdeflate"));
#endif
  /* Nothing uses librdkafka: never advertised, even when it is found. */
  assert_null(strstr(f, "kafka"));
  /* No trailing space. */
  assert_int_not_equal(f[strlen(f) - 1], ' ');

  /* A binary without TLS connections (the collector's listener) does not
   * list tls even when OpenSSL is built in. */
  assert_null(strstr(sl_cli_features(all & ~SL_CLI_F_TLS, f, sizeof(f)),
                     "tls"));
  assert_string_equal(sl_cli_features(0, f, sizeof(f)), "none");
  run_features = 0;
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--version", NULL);
  run_features = all;
  assert_int_equal(SL_CLI_EXIT(rc), 0);
  snprintf(want, sizeof(want), "sluice-test %s\nfeatures: none\n",
           SL_VERSION);
  assert_string_equal(o, want);
  /* A short buffer holds whole words only. */
#if defined(HAVE_OPENSSL) && defined(HAVE_LIBDEFLATE)
  assert_string_equal(sl_cli_features(all, f, 6), "tls");
#endif
}

static void
test_help(void **state)
{
  struct sl_cli c;
  int rc;

  (void)state;
  rc = run(&c, o, sizeof(o), e, sizeof(e), "-h", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 0);
  assert_non_null(strstr(o, "usage: sluice-test [-c FILE]"));
  assert_non_null(strstr(o, "/etc/sluice/test.yml"));
  assert_non_null(strstr(o, "data_dir (string, required): where state "
                         "lives"));
  /* The subcommands are listed, before the configuration keys. */
  assert_non_null(strstr(o, "\ncommands:\n"));
  assert_non_null(strstr(o, "  status "));
  assert_non_null(strstr(o, "  test output "));
  assert_non_null(strstr(o, "connect, exit 0 or 1\n"));
  assert_true(strstr(o, "commands:") < strstr(o, "configuration keys:"));
  rc = run(&c, o, sizeof(o), e, sizeof(e), "--help", NULL);
  assert_int_equal(SL_CLI_EXIT(rc), 0);
  assert_non_null(strstr(o, "--log-level"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_options_and_subcommand),
    cmocka_unit_test(test_usage_errors),
    cmocka_unit_test(test_log_format),
    cmocka_unit_test(test_version),
    cmocka_unit_test(test_help),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
