/* level.c - log.level synonyms (the map is documented in level.h). */
#include "level.h"

#include <string.h>
#include <strings.h>

static const struct {
  const char *from, *to;
} level_map[] = {
  { "trace", "trace" }, { "trc", "trace" }, { "finest", "trace" },
  { "finer", "trace" }, { "verbose", "trace" }, { "vrb", "trace" },
  { "t", "trace" }, { "v", "trace" }, { "10", "trace" },
  { "debug", "debug" }, { "dbg", "debug" }, { "fine", "debug" },
  { "config", "debug" }, { "d", "debug" }, { "20", "debug" },
  { "info", "info" }, { "inf", "info" }, { "information", "info" },
  { "informational", "info" }, { "i", "info" }, { "30", "info" },
  { "notice", "notice" },
  { "warn", "warn" }, { "warning", "warn" }, { "wrn", "warn" },
  { "w", "warn" }, { "40", "warn" },
  { "error", "error" }, { "err", "error" }, { "eror", "error" },
  { "severe", "error" }, { "e", "error" }, { "50", "error" },
  { "critical", "critical" }, { "crit", "critical" },
  { "alert", "alert" },
  { "emergency", "emergency" }, { "emerg", "emergency" },
  { "panic", "emergency" },
  { "fatal", "fatal" }, { "ftl", "fatal" }, { "f", "fatal" },
  { "60", "fatal" },
};

const char *
sl_level_norm(const char *s, size_t n)
{
  size_t i;

  if (n == 0 || n > 13)
    return NULL;
  for (i = 0; i < sizeof(level_map) / sizeof(level_map[0]); i++)
    if (strlen(level_map[i].from) == n &&
        strncasecmp(s, level_map[i].from, n) == 0)
      return level_map[i].to;
  return NULL;
}

const char *
sl_level_from_syslog(int severity)
{
  static const char *const sev[8] = {
    "emergency", "alert", "critical", "error", "warn", "notice", "info",
    "debug",
  };

  return severity >= 0 && severity < 8 ? sev[severity] : NULL;
}

static int
is_alpha(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const char *
sl_level_scan(const char *line, size_t len)
{
  size_t i = 0, w;
  char open = 0, close = 0;
  int upper = 1;

  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  if (i < len && strchr("[<(", line[i]) && line[i]) {
    open = line[i++];
    close = open == '[' ? ']' : open == '<' ? '>' : ')';
  }
  for (w = i; w < len && is_alpha(line[w]); w++)
    if (line[w] >= 'a' && line[w] <= 'z')
      upper = 0;
  /* One-letter words are levels only in fields ("I" starts sentences). */
  if (w - i < 3)
    return NULL;
  if (open) {
    if (w >= len || line[w] != close)
      return NULL;
  } else if (!upper || (w < len && line[w] != ':' && line[w] != ' ' &&
                        line[w] != '\t')) {
    return NULL;
  }
  return sl_level_norm(line + i, w - i);
}
