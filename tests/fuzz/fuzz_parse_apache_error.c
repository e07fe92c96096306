/* fuzz_parse_apache_error.c - libFuzzer target for the `apache_error` parser (checks in
 * fuzz_parser.h; seeds in corpus-parse_apache_error/). */
#define FUZZ_PARSER "apache_error"
#include "fuzz_parser.h"
