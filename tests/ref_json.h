/* ref_json.h - the jansson reference model of the agent's JSON-lines
 * parser (agent/parse_json.c), shared by tests/unit/agent/test_parse_json.c
 * and tests/fuzz/fuzz_parse_json.c.
 *
 * It says what the parser must make of one line, under the rules
 * parse_json.c documents:
 *  - the line is taken as given: the line splitter (agent/worker.c), not
 *    the parser, strips one trailing CR;
 *  - invalid UTF-8 is repaired to U+FFFD per bad byte before jansson sees
 *    it (the parser repairs instead of rejecting), by this file's own
 *    decoder, written apart from the code under test;
 *  - valid means: jansson (JSON_DECODE_ANY | JSON_ALLOW_NUL) reads an
 *    object of value depth at most REF_JSON_MAX_DEPTH, and the line holds
 *    no raw NUL byte (jansson takes NUL as end of input in places);
 *  - jansson's numeric overflow is its int64/double limit, not a JSON
 *    rule: no verdict;
 *  - values: \u0000 in strings becomes U+FFFD; lines with duplicate keys
 *    have no reference values (jansson keeps the last, the parser the
 *    first).
 */
#ifndef REF_JSON_H
#define REF_JSON_H

#include <stddef.h>

#include <jansson.h>

/* One less than jansson's own limit: the event's "app" adds a level. */
#define REF_JSON_MAX_DEPTH 2047

struct ref_json {
  int verdict;        /* 1 valid, 0 invalid, -1 no verdict (overflow) */
  char *fixed;        /* the line as jansson reads it (malloc'ed) */
  size_t fixed_len;
  json_t *doc;        /* jansson's DOM of `fixed`, NULL if it refused */
  json_error_t err;   /* jansson's error when doc is NULL */
};

/* Length of the well-formed UTF-8 sequence at s (n > 0 bytes left), or 0
 * (Unicode table 3-7). */
size_t ref_json_utf8(const unsigned char *s, size_t n);

/* Judge line[0..len). Free with ref_json_free. */
void ref_json_judge(const char *line, size_t len, struct ref_json *r);
void ref_json_free(struct ref_json *r);

/* The values the parser must produce for a valid line, as a new object
 * (NUL in strings as U+FFFD); NULL when the line has duplicate keys. */
json_t *ref_json_values(const struct ref_json *r);

#endif
