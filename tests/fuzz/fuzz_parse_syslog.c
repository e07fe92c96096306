/* fuzz_parse_syslog.c - libFuzzer target for the `syslog` parser (checks in
 * fuzz_parser.h; seeds in corpus-parse_syslog/). */
#define FUZZ_PARSER "syslog"
#include "fuzz_parser.h"
