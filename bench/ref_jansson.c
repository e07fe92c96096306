/* ref_jansson.c - reference cost for bench/run.sh: parse every line of a
 * JSON-lines file into a jansson DOM and dump it again, the naive per-line
 * pipeline DESIGN.md's hot-path budget is measured against.
 *
 *   bench_ref_jansson FILE
 *
 * Prints "lines bytes_in bytes_out cpu_s" (cpu = utime + stime of this
 * process) so that run.sh can report CPU-s/GB measured on the same machine
 * in the same minute as the agent. Output bytes are counted, not written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>

int
main(int argc, char **argv)
{
  struct rusage ru;
  unsigned long long lines = 0, bin = 0, bout = 0, bad = 0;
  char *line = NULL, *out;
  size_t cap = 0;
  ssize_t n;
  json_error_t jerr;
  json_t *v;
  FILE *f;

  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  f = fopen(argv[1], "r");
  if (f == NULL) {
    perror(argv[1]);
    return 1;
  }
  while ((n = getline(&line, &cap, f)) > 0) {
    lines++;
    bin += (unsigned long long)n;
    v = json_loadb(line, (size_t)n, JSON_DISABLE_EOF_CHECK, &jerr);
    if (v == NULL) {
      bad++;
      continue;
    }
    out = json_dumps(v, JSON_COMPACT);
    if (out)
      bout += strlen(out) + 1;
    free(out);
    json_decref(v);
  }
  free(line);
  fclose(f);
  getrusage(RUSAGE_SELF, &ru);
  printf("%llu %llu %llu %.3f\n", lines, bin, bout,
         (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return bad ? 1 : 0;
}
