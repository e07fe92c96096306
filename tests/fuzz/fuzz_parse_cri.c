/* fuzz_parse_cri.c - libFuzzer target for the `cri` parser (checks in
 * fuzz_parser.h; seeds in corpus-parse_cri/). */
#define FUZZ_PARSER "cri"
#define FUZZ_THEN "json"
#include "fuzz_parser.h"
