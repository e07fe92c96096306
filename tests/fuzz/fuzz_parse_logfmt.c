/* fuzz_parse_logfmt.c - libFuzzer target for the `logfmt` parser (checks in
 * fuzz_parser.h; seeds in corpus-parse_logfmt/). */
#define FUZZ_PARSER "logfmt"
#include "fuzz_parser.h"
