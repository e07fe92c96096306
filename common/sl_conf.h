/* sl_conf.h - configuration: YAML (libyaml) into a jansson tree, validated
 * and normalised by a schema table.
 *
 * Each binary defines its whole schema once as a table of sl_conf_key rows
 * (key, type, default, help, nested table); validation, defaults and --help
 * all come from it (fluent-bit config_map). Every node of the loaded tree
 * remembers the file and line it came from, so any error, including ones
 * found later by a module (a bad regex, an unknown host), is reported as
 *   <file>:<line>: <key.path>: <reason>
 *
 * Normalisation after a successful load:
 *   - missing keys with a default get the default (parsed as if written);
 *   - SL_CT_DURATION becomes an integer of milliseconds ("10s", "250ms",
 *     "1m", "2h", "7d", bare numbers are seconds);
 *   - SL_CT_SIZE becomes an integer of bytes ("512MiB", "10MB", "4k", bare
 *     numbers are bytes; KB/MB/GB are powers of 1000, KiB/MiB/GiB and k/m/g
 *     powers of 1024);
 *   - SL_CT_STR_LIST accepts a single string and stores a 1-element array;
 *   - unknown keys are errors; so are wrong types and bad enum values.
 * ${VAR} and ${VAR:-default} are expanded in scalar values before typing; an
 * unset ${VAR} without default is an error. "$${" is a literal "${".
 *
 * Every error, not only the first: the loader reports each problem and
 * goes on (a refused value is removed and its default put in its place),
 * and the checks that run on the loaded tree (agent/config.c,
 * collector/config.c) add theirs with sl_conf_error(). sl_conf_report()
 * prints the list in file order, at most SL_CONF_MAX_ERRORS lines and then
 * "<file>: N more errors not shown". A YAML syntax error is the exception:
 * libyaml cannot resume after one, so it is the only error reported.
 *
 * Details (implementation notes, sl_conf.c):
 *   - errors come in file order; YAML syntax errors read
 *     "file:line: yaml: <libyaml problem> (<context> at line N)";
 *     list items are addressed as "inputs[0].paths";
 *   - a key written with no value ("key:", "~", "null") counts as missing:
 *     the default applies, or "required key is missing";
 *   - an absent SL_CT_OBJ whose sub-table has no required key is created
 *     with its defaults, so "spool.max_bytes" is always there; absent
 *     lists/maps without default stay absent (NULL from sl_conf_get);
 *   - `def` may be a YAML flow collection ("[]", "{a: 1}");
 *   - SL_CT_MAP and SL_CT_ANY type unquoted scalars by the YAML 1.2 core
 *     schema (null, true/false, integers, floats), quoted ones stay strings;
 *   - duplicate keys are errors; aliases work but expansion is capped;
 *   - ENUM/STR/STR_LIST accept any scalar as text (port: 80 -> "80").
 * sl_conf_line() is 0 for true/false/null nodes (jansson shares them).
 *
 * Ownership: struct sl_conf owns the tree; json_t pointers from it are
 * borrowed and valid until sl_conf_free().
 */
#ifndef SL_CONF_H
#define SL_CONF_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum sl_conf_type {
  SL_CT_STR,       /* string */
  SL_CT_INT,       /* integer (decimal) */
  SL_CT_FLOAT,     /* number */
  SL_CT_BOOL,      /* true/false/yes/no/on/off */
  SL_CT_DURATION,  /* -> integer milliseconds */
  SL_CT_SIZE,      /* -> integer bytes */
  SL_CT_ENUM,      /* string, one of `choices` ("a|b|c") */
  SL_CT_STR_LIST,  /* list of strings (a scalar becomes a 1-element list) */
  SL_CT_OBJ,       /* mapping validated by `sub` */
  SL_CT_OBJ_LIST,  /* list of mappings, each validated by `sub` */
  SL_CT_MAP,       /* free-form mapping of string keys to scalars (labels) */
  SL_CT_ANY,       /* anything, not validated further */
};

#define SL_CK_REQUIRED 0x1u  /* error if missing (no default) */

struct sl_conf_key {
  const char *key;
  enum sl_conf_type type;
  const char *def;       /* default as YAML scalar text; NULL: none */
  const char *help;      /* one line for --help */
  const struct sl_conf_key *sub; /* for OBJ / OBJ_LIST; NULL-key terminated */
  const char *choices;   /* for ENUM: "a|b|c" */
  unsigned flags;        /* SL_CK_* */
};
/* Tables end with a row whose key is NULL. */
#define SL_CONF_END { NULL, SL_CT_ANY, NULL, NULL, NULL, NULL, 0 }

struct sl_conf;

/* Load and validate. On failure returns SL_ECONFIG (or SL_ENOENT/SL_EIO)
 * and writes one line "file:line: key.path: reason" into err: the first
 * error in file order. */
int sl_conf_load(const char *path, const struct sl_conf_key *schema,
                 struct sl_conf **out, char *err, size_t errlen);
/* Same from memory; `name` stands in for the file name in messages. */
int sl_conf_load_str(const char *name, const char *text, size_t len,
                     const struct sl_conf_key *schema, struct sl_conf **out,
                     char *err, size_t errlen);
/* For --check and start-up: like the above, but a file that parsed is
 * handed out even when it has errors (SL_ECONFIG with *out set), so that
 * the binary's own checks can add theirs before sl_conf_report() prints
 * them all. Values that failed are gone from the tree (defaults in their
 * place): never run with such a config. *out is NULL after a YAML syntax
 * error, a top level that is not a mapping or an unreadable file. */
int sl_conf_load_all(const char *path, const struct sl_conf_key *schema,
                     struct sl_conf **out, char *err, size_t errlen);
int sl_conf_load_str_all(const char *name, const char *text, size_t len,
                         const struct sl_conf_key *schema,
                         struct sl_conf **out, char *err, size_t errlen);
void sl_conf_free(struct sl_conf *c);

json_t *sl_conf_root(const struct sl_conf *c);
const char *sl_conf_file(const struct sl_conf *c);
/* Line of a node in the file (1-based), 0 if it came from a default. */
int sl_conf_line(const struct sl_conf *c, const json_t *node);
/* Format "file:line: keypath: reason" for a problem found after loading.
 * `node` may be NULL (line 0 is then printed as the file alone). */
void sl_conf_errorf(const struct sl_conf *c, const json_t *node,
                    const char *keypath, char *err, size_t errlen,
                    const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 6, 7)))
#endif
  ;

/* Errors a check found on a loaded config. The list is bounded: */
#define SL_CONF_MAX_ERRORS 100
/* Format "file:line: keypath: reason" as sl_conf_errorf() does and add it
 * to c's list; err gets it too when err is still empty (err keeps the
 * first error). Nothing is added when keypath is a value the loader
 * already refused, or lies below one (its absence is no news). Returns
 * SL_ECONFIG, so a check can `return sl_conf_error(...)` or go on. */
int sl_conf_error(const struct sl_conf *c, const json_t *node,
                  const char *keypath, char *err, size_t errlen,
                  const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 6, 7)))
#endif
  ;
/* Add a line a module formatted itself (with sl_conf_errorf() or not);
 * same rules for err. Returns SL_ECONFIG. */
int sl_conf_error_text(const struct sl_conf *c, const char *text, char *err,
                       size_t errlen);
/* Errors recorded so far (loader and checks, including those past the
 * cap). */
size_t sl_conf_nerrors(const struct sl_conf *c);
/* 1 when the loader refused the value at keypath (or one above it):
 * checks skip what depends on it ("output.type") instead of reporting
 * consequences of the default that replaced it. */
int sl_conf_failed(const struct sl_conf *c, const char *keypath);
/* Print every error of c to fp, one per line in file order, then
 * "<file>: N more errors not shown" past SL_CONF_MAX_ERRORS. With no
 * list (c NULL: the file did not parse) print err, and after a YAML
 * syntax error a line saying that nothing after it was checked. */
void sl_conf_report(FILE *fp, const char *path, const struct sl_conf *c,
                    const char *err);

/* Getters on normalised objects. `key` may be a dotted path ("spool.max_bytes").
 * Missing keys give NULL / `def`. */
const char *sl_conf_str(const json_t *obj, const char *key);
int64_t sl_conf_int(const json_t *obj, const char *key, int64_t def);
double sl_conf_float(const json_t *obj, const char *key, double def);
int sl_conf_bool(const json_t *obj, const char *key, int def);
json_t *sl_conf_get(const json_t *obj, const char *key);

/* Print the schema as indented "key (type, default X): help" lines. */
void sl_conf_print_help(FILE *fp, const struct sl_conf_key *schema);

/* Parse helpers, exposed for tests and CLI flags. 0 or SL_EPARSE. */
int sl_conf_parse_duration_ms(const char *s, int64_t *ms);
int sl_conf_parse_size(const char *s, int64_t *bytes);

#endif
