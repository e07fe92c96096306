/* fuzz_parse_docker.c - libFuzzer target for the `docker` parser (checks in
 * fuzz_parser.h; seeds in corpus-parse_docker/). */
#define FUZZ_PARSER "docker"
#define FUZZ_THEN "logfmt"
#include "fuzz_parser.h"
