#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "sl_conf.h"
#include "sl_err.h"

static const struct sl_conf_key tls_keys[] = {
  { "cert", SL_CT_STR, NULL, "certificate", NULL, NULL, SL_CK_REQUIRED },
  { "verify", SL_CT_BOOL, "true", "verify peer", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key http_keys[] = {
  { "listen", SL_CT_STR, "127.0.0.1:5066", "address", NULL, NULL, 0 },
  { "port", SL_CT_INT, "5066", "port", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key input_keys[] = {
  { "type", SL_CT_ENUM, "file", "input type", NULL, "file|stdin", 0 },
  { "paths", SL_CT_STR_LIST, NULL, "globs", NULL, NULL, SL_CK_REQUIRED },
  { "close_inactive", SL_CT_DURATION, "5m", "close idle files", NULL, NULL,
    0 },
  { "max_line_bytes", SL_CT_SIZE, "1MiB", "truncate longer", NULL, NULL, 0 },
  { "fields", SL_CT_MAP, NULL, "extra fields", NULL, NULL, 0 },
  { "tls", SL_CT_OBJ, NULL, "tls", tls_keys, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key schema[] = {
  { "data_dir", SL_CT_STR, NULL, "state dir", NULL, NULL, SL_CK_REQUIRED },
  { "log_level", SL_CT_ENUM, "info", "level", NULL, "debug|info|warn|error",
    0 },
  { "ratio", SL_CT_FLOAT, "0.5", "a ratio", NULL, NULL, 0 },
  { "compress", SL_CT_BOOL, "false", "gzip", NULL, NULL, 0 },
  { "timeout", SL_CT_DURATION, "30s", "timeout", NULL, NULL, 0 },
  { "max_bytes", SL_CT_SIZE, "1GiB", "cap", NULL, NULL, 0 },
  { "hosts", SL_CT_STR_LIST, "[]", "hosts", NULL, NULL, 0 },
  { "http", SL_CT_OBJ, NULL, "http", http_keys, NULL, 0 },
  { "inputs", SL_CT_OBJ_LIST, NULL, "inputs", input_keys, NULL, 0 },
  { "extra", SL_CT_ANY, NULL, "anything", NULL, NULL, 0 },
  SL_CONF_END
};

static char err[1024];

static struct sl_conf *
load_ok(const char *text)
{
  struct sl_conf *c = NULL;
  int rc = sl_conf_load_str("t.yml", text, strlen(text), schema, &c, err,
                            sizeof(err));
  if (rc != 0)
    fail_msg("load failed (%d): %s", rc, err);
  return c;
}

/* Load must fail with exactly this message. */
static void
load_bad(const char *text, const char *want)
{
  struct sl_conf *c = (struct sl_conf *)0x1;
  int rc = sl_conf_load_str("t.yml", text, strlen(text), schema, &c, err,
                            sizeof(err));
  if (rc != SL_ECONFIG)
    fail_msg("want SL_ECONFIG, got %d (%s) for:\n%s", rc, err, text);
  assert_null(c);
  if (strcmp(err, want) != 0)
    fail_msg("error\n  got:  %s\n  want: %s", err, want);
  assert_null(strchr(err, '\n'));
}

/* Load must fail with a message starting with this prefix. */
static void
load_bad_prefix(const char *text, const char *prefix)
{
  struct sl_conf *c = NULL;
  int rc = sl_conf_load_str("t.yml", text, strlen(text), schema, &c, err,
                            sizeof(err));
  if (rc != SL_ECONFIG)
    fail_msg("want SL_ECONFIG, got %d (%s) for:\n%s", rc, err, text);
  if (strncmp(err, prefix, strlen(prefix)) != 0)
    fail_msg("error\n  got:  %s\n  want prefix: %s", err, prefix);
  assert_null(strchr(err, '\n'));
}

static void
test_defaults_and_normalisation(void **state)
{
  struct sl_conf *c;
  json_t *r, *in;

  (void)state;
  c = load_ok("data_dir: /var/lib/sluice\n"
              "inputs:\n"
              "  - paths: /var/log/*.log\n");
  r = sl_conf_root(c);
  assert_string_equal(sl_conf_str(r, "data_dir"), "/var/lib/sluice");
  assert_string_equal(sl_conf_str(r, "log_level"), "info");
  assert_true(sl_conf_float(r, "ratio", 0) == 0.5);
  assert_int_equal(sl_conf_bool(r, "compress", -1), 0);
  assert_int_equal(sl_conf_int(r, "timeout", -1), 30000);
  assert_true(sl_conf_int(r, "max_bytes", -1) == 1073741824LL);
  assert_true(json_is_array(sl_conf_get(r, "hosts")));
  assert_int_equal(json_array_size(sl_conf_get(r, "hosts")), 0);
  /* An absent section without required keys still gets its defaults. */
  assert_string_equal(sl_conf_str(r, "http.listen"), "127.0.0.1:5066");
  assert_int_equal(sl_conf_int(r, "http.port", -1), 5066);
  /* Defaults come from nowhere in the file. */
  assert_int_equal(sl_conf_line(c, sl_conf_get(r, "http.port")), 0);
  in = json_array_get(sl_conf_get(r, "inputs"), 0);
  assert_string_equal(sl_conf_str(in, "type"), "file");
  /* STR_LIST: a single string becomes a one-element list. */
  assert_true(json_is_array(sl_conf_get(in, "paths")));
  assert_int_equal(json_array_size(sl_conf_get(in, "paths")), 1);
  assert_string_equal(json_string_value(json_array_get(
      sl_conf_get(in, "paths"), 0)), "/var/log/*.log");
  assert_int_equal(sl_conf_line(c, sl_conf_get(in, "paths")), 3);
  assert_int_equal(sl_conf_int(in, "close_inactive", -1), 300000);
  assert_int_equal(sl_conf_int(in, "max_line_bytes", -1), 1048576);
  /* tls has a required key, so it is not invented. */
  assert_null(sl_conf_get(in, "tls"));
  /* Missing values give the caller's default. */
  assert_int_equal(sl_conf_int(r, "nope", 7), 7);
  assert_int_equal(sl_conf_int(r, "http.nope", 8), 8);
  assert_null(sl_conf_str(r, "nope.deeper"));
  assert_string_equal(sl_conf_file(c), "t.yml");
  sl_conf_free(c);
}

static void
test_values_typed(void **state)
{
  struct sl_conf *c;
  json_t *r, *in, *f, *x;

  (void)state;
  c = load_ok("data_dir: '/d'\n"
              "log_level: debug\n"
              "ratio: 2\n"
              "compress: yes\n"
              "timeout: 1h30m\n"
              "max_bytes: 10MB\n"
              "hosts: [a, \"b\"]\n"
              "http:\n"
              "  port: \"9600\"\n"
              "inputs:\n"
              "  - paths: [x, y]\n"
              "    type: stdin\n"
              "    fields: {team: core, n: 3, on: true, f: 1.5, s: '7'}\n"
              "    tls: {cert: /c.pem}\n"
              "extra:\n"
              "  list: [1, two, 3.0, null, false]\n");
  r = sl_conf_root(c);
  assert_true(sl_conf_float(r, "ratio", 0) == 2.0);
  assert_int_equal(sl_conf_bool(r, "compress", -1), 1);
  assert_int_equal(sl_conf_int(r, "timeout", -1), 5400000);
  assert_int_equal(sl_conf_int(r, "max_bytes", -1), 10000000);
  assert_int_equal(json_array_size(sl_conf_get(r, "hosts")), 2);
  /* A quoted number is fine for an INT key. */
  assert_int_equal(sl_conf_int(r, "http.port", -1), 9600);
  in = json_array_get(sl_conf_get(r, "inputs"), 0);
  assert_string_equal(sl_conf_str(in, "type"), "stdin");
  f = sl_conf_get(in, "fields");
  assert_string_equal(sl_conf_str(f, "team"), "core");
  assert_true(json_integer_value(json_object_get(f, "n")) == 3);
  assert_true(json_is_true(json_object_get(f, "on")));
  assert_true(json_real_value(json_object_get(f, "f")) == 1.5);
  /* Quoted stays a string. */
  assert_string_equal(sl_conf_str(f, "s"), "7");
  assert_string_equal(sl_conf_str(in, "tls.cert"), "/c.pem");
  assert_int_equal(sl_conf_bool(in, "tls.verify", -1), 1);
  x = sl_conf_get(r, "extra.list");
  assert_true(json_is_integer(json_array_get(x, 0)));
  assert_true(json_is_string(json_array_get(x, 1)));
  assert_true(json_is_real(json_array_get(x, 2)));
  assert_true(json_is_null(json_array_get(x, 3)));
  assert_true(json_is_false(json_array_get(x, 4)));
  /* Line numbers of normalised (replaced) nodes survive. */
  assert_int_equal(sl_conf_line(c, sl_conf_get(r, "timeout")), 5);
  assert_int_equal(sl_conf_line(c, sl_conf_get(r, "http.port")), 9);
  assert_int_equal(sl_conf_line(c, sl_conf_get(in, "paths")), 11);
  sl_conf_free(c);
}

static void
test_wrong_type_line(void **state)
{
  (void)state;
  load_bad("data_dir: /d\n"
           "http:\n"
           "  listen: x\n"
           "  port: abc\n",
           "t.yml:4: http.port: expected an integer, got \"abc\"");
  load_bad("data_dir: /d\n"
           "\n"
           "compress: maybe\n",
           "t.yml:3: compress: expected true or false, got \"maybe\"");
  load_bad("data_dir: [a, b]\n",
           "t.yml:1: data_dir: expected a string, got a list");
  load_bad("data_dir: /d\nhttp: 5\n",
           "t.yml:2: http: expected a mapping, got a scalar");
  load_bad("data_dir: /d\nratio: 1,5\n",
           "t.yml:2: ratio: expected a number, got \"1,5\"");
  load_bad("data_dir: /d\nhosts: {a: 1}\n",
           "t.yml:2: hosts: expected a string or a list of strings, "
           "got a mapping");
  load_bad("data_dir: /d\nhosts:\n  - a\n  - [b]\n",
           "t.yml:4: hosts[1]: expected a string, got a list");
  load_bad("- a\n- b\n",
           "t.yml:1: (root): the top level must be a mapping, got a list");
}

static void
test_unknown_key_line(void **state)
{
  (void)state;
  load_bad("data_dir: /d\n"
           "http:\n"
           "  listen: x\n"
           "  lisen: y\n",
           "t.yml:4: http.lisen: unknown key");
  /* The key's own line, even when its value is a block on later lines. */
  load_bad("data_dir: /d\n"
           "bogus:\n"
           "  - 1\n",
           "t.yml:2: bogus: unknown key");
}

static void
test_yaml_syntax_error_line(void **state)
{
  (void)state;
  /* Bad indentation on line 3. */
  load_bad_prefix("data_dir: /d\n"
                  "http:\n"
                  "   listen: x\n"
                  "  port: 1\n",
                  "t.yml:4: yaml: ");
  /* Unclosed flow sequence: libyaml reports the line it gave up on. */
  load_bad_prefix("data_dir: /d\n"
                  "hosts: [a, b\n"
                  "timeout: 5s\n",
                  "t.yml:3: yaml: ");
  load_bad_prefix("data_dir: /d\n"
                  "hosts: \"unterminated\n",
                  "t.yml:3: yaml: ");
  load_bad_prefix("a: *nope\n", "t.yml:1: yaml: ");
  load_bad("data_dir: /d\n---\ndata_dir: /e\n",
           "t.yml:3: (root): more than one YAML document");
}

static void
test_duplicate_key(void **state)
{
  (void)state;
  load_bad("data_dir: /d\n"
           "http:\n"
           "  port: 1\n"
           "  port: 2\n",
           "t.yml:4: http.port: duplicate key");
}

static void
test_env_expansion(void **state)
{
  struct sl_conf *c;
  json_t *r;

  (void)state;
  setenv("SL_T_DIR", "/from/env", 1);
  setenv("SL_T_PORT", "7000", 1);
  setenv("SL_T_EMPTY", "", 1);
  unsetenv("SL_T_UNSET");
  c = load_ok("data_dir: ${SL_T_DIR}/data\n"
              "http:\n"
              "  port: ${SL_T_PORT}\n"
              "  listen: \"${SL_T_UNSET:-127.0.0.1}:${SL_T_EMPTY:-99}\"\n"
              "hosts: [\"$${NOT_A_VAR}\", \"a$b\", \"${SL_T_UNSET:-}\"]\n");
  r = sl_conf_root(c);
  assert_string_equal(sl_conf_str(r, "data_dir"), "/from/env/data");
  /* Expanded before typing: an INT key takes the variable's value. */
  assert_int_equal(sl_conf_int(r, "http.port", -1), 7000);
  assert_string_equal(sl_conf_str(r, "http.listen"), "127.0.0.1:99");
  assert_string_equal(json_string_value(json_array_get(
      sl_conf_get(r, "hosts"), 0)), "${NOT_A_VAR}");
  assert_string_equal(json_string_value(json_array_get(
      sl_conf_get(r, "hosts"), 1)), "a$b");
  assert_string_equal(json_string_value(json_array_get(
      sl_conf_get(r, "hosts"), 2)), "");
  sl_conf_free(c);

  load_bad("data_dir: /d\n"
           "http:\n"
           "  listen: ${SL_T_UNSET}\n",
           "t.yml:3: http.listen: environment variable SL_T_UNSET is not "
           "set");
  load_bad("data_dir: /d\n"
           "inputs:\n"
           "  - paths: [a, \"${SL_T_UNSET}\"]\n",
           "t.yml:3: inputs[0].paths[1]: environment variable SL_T_UNSET "
           "is not set");
  load_bad("data_dir: ${SL_T_DIR\n",
           "t.yml:1: data_dir: unterminated ${SL_T_DIR");
  load_bad_prefix("data_dir: ${1X}\n",
                  "t.yml:1: data_dir: bad variable reference");
  setenv("SL_T_PORT", "nope", 1);
  load_bad("data_dir: /d\nhttp:\n  port: ${SL_T_PORT}\n",
           "t.yml:3: http.port: expected an integer, got \"nope\"");
}

static void
test_duration_size_units(void **state)
{
  static const struct { const char *s; int64_t ms; } dur[] = {
    { "250ms", 250 }, { "10s", 10000 }, { "1m", 60000 },
    { "2h", 7200000 }, { "7d", 604800000 }, { "5", 5000 },
    { "1.5s", 1500 }, { "0.5", 500 }, { "1h30m", 5400000 },
    { "0", 0 }, { "1m30s500ms", 90500 },
  };
  static const char *const dur_bad[] = {
    "", "s", "-1s", "10 s", "10x", "1e3s", "0x10", "5 ", " 5", "10S",
    "5 5", "1s5", "inf", "1..5s",
  };
  static const struct { const char *s; int64_t b; } sz[] = {
    { "4096", 4096 }, { "4k", 4096 }, { "4K", 4096 }, { "64KiB", 65536 },
    { "10KB", 10000 }, { "10MB", 10000000 }, { "512MiB", 536870912 },
    { "2m", 2097152 }, { "1GiB", 1073741824 }, { "1g", 1073741824 },
    { "3GB", 3000000000LL }, { "1.5KiB", 1536 }, { "100 MB", 100000000 },
    { "0", 0 }, { "1TiB", 1099511627776LL }, { "7B", 7 },
  };
  static const char *const sz_bad[] = {
    "", "k", "-1", "10 ", "10XB", "1e3", "0x10", "10 Mb ", "ten",
    "99999999999GiB",
  };
  size_t i;
  int64_t v;

  (void)state;
  for (i = 0; i < sizeof(dur) / sizeof(dur[0]); i++) {
    if (sl_conf_parse_duration_ms(dur[i].s, &v) != 0 || v != dur[i].ms)
      fail_msg("duration %s", dur[i].s);
  }
  for (i = 0; i < sizeof(dur_bad) / sizeof(dur_bad[0]); i++)
    if (sl_conf_parse_duration_ms(dur_bad[i], &v) != SL_EPARSE)
      fail_msg("accepted duration '%s'", dur_bad[i]);
  for (i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
    if (sl_conf_parse_size(sz[i].s, &v) != 0 || v != sz[i].b)
      fail_msg("size %s", sz[i].s);
  }
  for (i = 0; i < sizeof(sz_bad) / sizeof(sz_bad[0]); i++)
    if (sl_conf_parse_size(sz_bad[i], &v) != SL_EPARSE)
      fail_msg("accepted size '%s'", sz_bad[i]);
  load_bad("data_dir: /d\ntimeout: 5 minutes\n",
           "t.yml:2: timeout: expected a duration like 250ms, 10s, 5m, 2h, "
           "7d, got \"5 minutes\"");
  load_bad("data_dir: /d\nmax_bytes: lots\n",
           "t.yml:2: max_bytes: expected a size like 4096, 64KiB, 10MB, "
           "1GiB, got \"lots\"");
}

static void
test_obj_list_nested(void **state)
{
  (void)state;
  load_bad("data_dir: /d\n"
           "inputs:\n"
           "  - paths: [a]\n"
           "  - type: file\n"
           "    close_inactive: soon\n",
           "t.yml:5: inputs[1].close_inactive: expected a duration like "
           "250ms, 10s, 5m, 2h, 7d, got \"soon\"");
  load_bad("data_dir: /d\n"
           "inputs:\n"
           "  - paths: [a]\n"
           "  - type: file\n",
           "t.yml:4: inputs[1].paths: required key is missing");
  load_bad("data_dir: /d\n"
           "inputs:\n"
           "  - paths: [a]\n"
           "    tls:\n"
           "      verify: false\n",
           "t.yml:5: inputs[0].tls.cert: required key is missing");
  load_bad("data_dir: /d\n"
           "inputs:\n"
           "  - paths: [a]\n"
           "    colour: red\n",
           "t.yml:4: inputs[0].colour: unknown key");
  load_bad("data_dir: /d\n"
           "inputs:\n"
           "  - just a string\n",
           "t.yml:3: inputs[0]: expected a mapping, got a scalar");
  load_bad("data_dir: /d\n"
           "inputs:\n"
           "  paths: [a]\n",
           "t.yml:3: inputs: expected a list of mappings, got a mapping");
  load_bad("data_dir: /d\n"
           "inputs:\n"
           "  - paths: [a]\n"
           "    fields:\n"
           "      nested: {no: 1}\n",
           "t.yml:5: inputs[0].fields.nested: expected a scalar, "
           "got a mapping");
}

static void
test_enum_rejected(void **state)
{
  (void)state;
  load_bad("data_dir: /d\nlog_level: verbose\n",
           "t.yml:2: log_level: \"verbose\" is not one of "
           "debug|info|warn|error");
  /* Prefixes of a choice are not a choice. */
  load_bad("data_dir: /d\nlog_level: inf\n",
           "t.yml:2: log_level: \"inf\" is not one of debug|info|warn|error");
  load_bad("data_dir: /d\ninputs:\n  - {paths: a, type: tcp}\n",
           "t.yml:3: inputs[0].type: \"tcp\" is not one of file|stdin");
}

static void
test_required_missing(void **state)
{
  struct sl_conf *c;

  (void)state;
  load_bad("log_level: info\n",
           "t.yml:1: data_dir: required key is missing");
  /* An empty value counts as missing. */
  load_bad("data_dir:\nlog_level: info\n",
           "t.yml:1: data_dir: required key is missing");
  load_bad("", "t.yml: data_dir: required key is missing");
  /* ...and for optional keys an empty value takes the default. */
  c = load_ok("data_dir: /d\ntimeout:\nhttp: ~\n");
  assert_int_equal(sl_conf_int(sl_conf_root(c), "timeout", -1), 30000);
  assert_int_equal(sl_conf_int(sl_conf_root(c), "http.port", -1), 5066);
  sl_conf_free(c);
}

static void
test_alias_limits(void **state)
{
  struct sl_conf *c;

  (void)state;
  /* Aliases work... */
  c = load_ok("data_dir: &d /x\nhttp:\n  listen: *d\n");
  assert_string_equal(sl_conf_str(sl_conf_root(c), "http.listen"), "/x");
  sl_conf_free(c);
  /* ...but an exponential expansion is refused. */
  load_bad_prefix("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                  "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                  "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                  "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                  "t.yml:");
  assert_non_null(strstr(err, "more than"));
}

static void
test_file_and_errorf(void **state)
{
  char path[] = "/tmp/sl_conf_test_XXXXXX";
  const char *text = "data_dir: /d\nhttp:\n  port: 81\n";
  struct sl_conf *c;
  json_t *port;
  int fd;

  (void)state;
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(sl_conf_load(path, schema, &c, err, sizeof(err)), 0);
  assert_string_equal(sl_conf_file(c), path);
  port = sl_conf_get(sl_conf_root(c), "http.port");
  assert_int_equal(sl_conf_line(c, port), 3);
  sl_conf_errorf(c, port, "http.port", err, sizeof(err),
                 "port %d is privileged", 81);
  {
    char want[512];
    snprintf(want, sizeof(want), "%s:3: http.port: port 81 is privileged",
             path);
    assert_string_equal(err, want);
    sl_conf_errorf(c, NULL, "x", err, sizeof(err), "bad\nthing");
    snprintf(want, sizeof(want), "%s: x: bad thing", path);
    assert_string_equal(err, want);
  }
  sl_conf_free(c);
  /* Errors from a file name the file. */
  fd = open(path, O_WRONLY | O_TRUNC);
  assert_int_equal(write(fd, "data_dir: /d\nnope: 1\n", 21), 21);
  close(fd);
  assert_int_equal(sl_conf_load(path, schema, &c, err, sizeof(err)),
                   SL_ECONFIG);
  {
    char want[512];
    snprintf(want, sizeof(want), "%s:2: nope: unknown key", path);
    assert_string_equal(err, want);
  }
  unlink(path);
  assert_int_equal(sl_conf_load(path, schema, &c, err, sizeof(err)),
                   SL_ENOENT);
  assert_null(c);
  assert_non_null(strstr(err, path));
}

static void
test_print_help(void **state)
{
  char buf[4096];
  FILE *f = tmpfile();
  size_t n;

  (void)state;
  assert_non_null(f);
  sl_conf_print_help(f, schema);
  fseek(f, 0, SEEK_SET);
  n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  assert_non_null(strstr(buf, "  data_dir (string, required): state dir\n"));
  assert_non_null(strstr(buf, "  timeout (duration, default 30s): timeout\n"));
  assert_non_null(strstr(buf,
      "  log_level (one of debug|info|warn|error, default info): level\n"));
  assert_non_null(strstr(buf, "  inputs[] (list of mappings): inputs\n"));
  /* Nested keys are indented under their section. */
  assert_non_null(strstr(buf, "\n    paths (list of strings, required): "
                         "globs\n"));
  assert_non_null(strstr(buf, "\n      cert (string, required)"));
}

/* Random byte mutations of a valid file: every outcome is either a load
 * or one "t.yml:..." line, never a crash (run under ASan in CI). */
static void
test_random_mutations(void **state)
{
  static const char base[] =
    "data_dir: ${SL_T_DIR:-/d}\n"
    "log_level: warn\n"
    "hosts: [a, \"b\", 'c']\n"
    "http:\n"
    "  port: 81\n"
    "inputs:\n"
    "  - paths: /x/*.log\n"
    "    close_inactive: 1m\n"
    "    fields: {a: 1, b: [x]}\n"
    "extra: &e {k: v}\n";
  static const char alphabet[] = ":-[]{},'\"&*!|>#%@`$ \t\n\r\\?0a~";
  char text[sizeof(base) + 8];
  uint32_t r = 2463534242u;
  struct sl_conf *c;
  size_t n, k, pos;
  int iter, rc, ok = 0;

  (void)state;
  for (iter = 0; iter < 3000; iter++) {
    memcpy(text, base, sizeof(base));
    n = sizeof(base) - 1;
    for (k = 0; k < (size_t)(1 + iter % 4); k++) {
      r ^= r << 13; r ^= r >> 17; r ^= r << 5;
      pos = r % n;
      r ^= r << 13; r ^= r >> 17; r ^= r << 5;
      if (r % 8 == 0)
        text[pos] = (char)(r >> 8);  /* any byte, even invalid UTF-8 */
      else
        text[pos] = alphabet[(r >> 8) % (sizeof(alphabet) - 1)];
    }
    c = NULL;
    err[0] = '\0';
    rc = sl_conf_load_str("t.yml", text, n, schema, &c, err, sizeof(err));
    if (rc == 0) {
      assert_non_null(c);
      assert_true(json_is_object(sl_conf_root(c)));
      sl_conf_free(c);
      ok++;
    } else {
      assert_int_equal(rc, SL_ECONFIG);
      assert_null(c);
      assert_int_equal(strncmp(err, "t.yml", 5), 0);
      assert_null(strchr(err, '\n'));
    }
  }
  /* Some mutations are harmless; the test must exercise both paths. */
  assert_true(ok > 0 && ok < 3000);
}

/* Load with sl_conf_load_str_all and return what sl_conf_report prints. */
static char *
report_all(const char *text, struct sl_conf **out, int *rc)
{
  static char buf[16384];
  FILE *fp = fmemopen(buf, sizeof(buf), "w");

  assert_non_null(fp);
  err[0] = '\0';
  *out = NULL;
  *rc = sl_conf_load_str_all("t.yml", text, strlen(text), schema, out, err,
                             sizeof(err));
  sl_conf_report(fp, "t.yml", *out, err);
  fclose(fp);
  return buf;
}

/* Issue 14: every error of the file, in file order; the first one is
 * still what err (and sl_conf_load) says. */
static void
test_all_errors_reported(void **state)
{
  const char *text = "data_dir: /d\n"
                     "timeout: soon\n"                 /* 2 */
                     "inputs:\n"
                     "  - paths: [a]\n"
                     "    max_line_bytes: huge\n"      /* 5 */
                     "    colour: red\n"               /* 6 */
                     "  - type: pipe\n"                /* 7 */
                     "http:\n"
                     "  port: eighty\n"                /* 9 */
                     "log_level: loud\n";              /* 10 */
  struct sl_conf *c;
  char *out;
  int rc;

  (void)state;
  out = report_all(text, &c, &rc);
  assert_int_equal(rc, SL_ECONFIG);
  assert_non_null(c);
  assert_string_equal(out,
    "t.yml:2: timeout: expected a duration like 250ms, 10s, 5m, 2h, 7d, "
    "got \"soon\"\n"
    "t.yml:5: inputs[0].max_line_bytes: expected a size like 4096, 64KiB, "
    "10MB, 1GiB, got \"huge\"\n"
    "t.yml:6: inputs[0].colour: unknown key\n"
    "t.yml:7: inputs[1].type: \"pipe\" is not one of file|stdin\n"
    "t.yml:7: inputs[1].paths: required key is missing\n"
    "t.yml:9: http.port: expected an integer, got \"eighty\"\n"
    "t.yml:10: log_level: \"loud\" is not one of debug|info|warn|error\n");
  assert_int_equal(sl_conf_nerrors(c), 7);
  /* Refused values are gone and their defaults are in their place. */
  assert_int_equal(sl_conf_int(sl_conf_root(c), "timeout", -1), 30000);
  assert_int_equal(sl_conf_int(sl_conf_root(c), "http.port", -1), 5066);
  assert_true(sl_conf_failed(c, "timeout"));
  assert_true(sl_conf_failed(c, "inputs[1].paths"));
  assert_false(sl_conf_failed(c, "inputs[0].paths"));
  /* A check's follow-up of a refused value is not news... */
  assert_int_equal(sl_conf_error(c, NULL, "inputs[1].paths", err,
                                 sizeof(err), "empty"), SL_ECONFIG);
  assert_int_equal(sl_conf_nerrors(c), 7);
  /* ...other findings join the list, err keeps the first. */
  err[0] = '\0';
  sl_conf_error(c, sl_conf_get(sl_conf_root(c), "data_dir"), "data_dir",
                err, sizeof(err), "not a directory");
  sl_conf_error(c, NULL, "x", err, sizeof(err), "second");
  sl_conf_error_text(c, "t.yml:3: inputs: from a module", err, sizeof(err));
  assert_string_equal(err, "t.yml:1: data_dir: not a directory");
  assert_int_equal(sl_conf_nerrors(c), 10);
  sl_conf_free(c);
  /* The one-error API says the first. */
  load_bad(text, "t.yml:2: timeout: expected a duration like 250ms, 10s, "
           "5m, 2h, 7d, got \"soon\"");
}

static void
test_all_errors_capped(void **state)
{
  char text[8192], *p = text, *out;
  struct sl_conf *c;
  int i, rc, lines = 0;

  (void)state;
  p += sprintf(p, "data_dir: /d\n");
  for (i = 0; i < SL_CONF_MAX_ERRORS + 20; i++)
    p += sprintf(p, "k%d: 1\n", i);
  out = report_all(text, &c, &rc);
  assert_int_equal(rc, SL_ECONFIG);
  for (p = out; (p = strchr(p, '\n')) != NULL; p++)
    lines++;
  assert_int_equal(lines, SL_CONF_MAX_ERRORS + 1);
  assert_non_null(strstr(out, "t.yml:2: k0: unknown key\n"));
  assert_non_null(strstr(out, "\nt.yml: 20 more errors not shown\n"));
  assert_int_equal(sl_conf_nerrors(c), SL_CONF_MAX_ERRORS + 20);
  sl_conf_free(c);
}

/* Syntax errors end parsing: one error, and a line that says so. */
static void
test_all_errors_yaml_syntax(void **state)
{
  struct sl_conf *c;
  char *out;
  int rc;

  (void)state;
  out = report_all("data_dir: /d\nfoo: [\nbar: 1\nbaz: 2\n", &c, &rc);
  assert_int_equal(rc, SL_ECONFIG);
  assert_null(c);
  assert_non_null(strstr(out, "t.yml:"));
  assert_non_null(strstr(out, ": yaml: "));
  assert_non_null(strstr(out, "\nt.yml: a YAML syntax error ends the check: "
                          "fix it to see any other errors\n"));
  /* Unset variables and duplicate keys are not syntax errors: all of
   * them are found. */
  unsetenv("SL_TEST_UNSET_A");
  out = report_all("data_dir: ${SL_TEST_UNSET_A}\nlog_level: info\n"
                   "log_level: warn\ntimeout: ${SL_TEST_UNSET_A}\n", &c,
                   &rc);
  assert_int_equal(rc, SL_ECONFIG);
  assert_string_equal(out,
    "t.yml:1: data_dir: environment variable SL_TEST_UNSET_A is not set\n"
    "t.yml:3: log_level: duplicate key\n"
    "t.yml:4: timeout: environment variable SL_TEST_UNSET_A is not set\n");
  sl_conf_free(c);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_defaults_and_normalisation),
    cmocka_unit_test(test_values_typed),
    cmocka_unit_test(test_wrong_type_line),
    cmocka_unit_test(test_unknown_key_line),
    cmocka_unit_test(test_yaml_syntax_error_line),
    cmocka_unit_test(test_duplicate_key),
    cmocka_unit_test(test_env_expansion),
    cmocka_unit_test(test_duration_size_units),
    cmocka_unit_test(test_obj_list_nested),
    cmocka_unit_test(test_enum_rejected),
    cmocka_unit_test(test_required_missing),
    cmocka_unit_test(test_alias_limits),
    cmocka_unit_test(test_file_and_errorf),
    cmocka_unit_test(test_print_help),
    cmocka_unit_test(test_random_mutations),
    cmocka_unit_test(test_all_errors_reported),
    cmocka_unit_test(test_all_errors_capped),
    cmocka_unit_test(test_all_errors_yaml_syntax),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
