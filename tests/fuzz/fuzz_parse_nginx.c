/* fuzz_parse_nginx.c - libFuzzer target for the `nginx` parser (checks in
 * fuzz_parser.h; seeds in corpus-parse_nginx/). */
#define FUZZ_PARSER "nginx"
#include "fuzz_parser.h"
