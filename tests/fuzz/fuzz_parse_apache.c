/* fuzz_parse_apache.c - libFuzzer target for the `apache` parser (checks in
 * fuzz_parser.h; seeds in corpus-parse_apache/). */
#define FUZZ_PARSER "apache"
#include "fuzz_parser.h"
