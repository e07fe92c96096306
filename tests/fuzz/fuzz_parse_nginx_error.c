/* fuzz_parse_nginx_error.c - libFuzzer target for the `nginx_error` parser (checks in
 * fuzz_parser.h; seeds in corpus-parse_nginx_error/). */
#define FUZZ_PARSER "nginx_error"
#include "fuzz_parser.h"
