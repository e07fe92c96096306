/* sl_log.h - self-logging as JSON lines on stderr.
 *
 * One line per record:
 *   {"@timestamp":"2026-11-25T16:05:24.123Z","log.level":"info",
 *    "component":"spool","message":"recovered","segment":"00000003.seg",...}
 * or, with the text format (--log-format text, for a human at a terminal):
 *   2026-11-25T16:05:24.123Z INFO  spool: recovered segment=00000003.seg
 * where a value that is empty or holds a space, '"', '=' or a control
 * character is written as a JSON string ("two words"), so a line stays one
 * line and splits on spaces.
 * Extra fields are given as a printf-free list of key/value pairs so the
 * call site stays cheap. Repeats of the same (component, message) within one
 * second are counted and summarised ("repeated":N) instead of printed, so a
 * broken peer cannot flood the log. Thread-safe (one lock around the write).
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdint.h>

enum sl_log_level {
  SL_LOG_DEBUG = 0,
  SL_LOG_INFO,
  SL_LOG_WARN,
  SL_LOG_ERROR,
};

/* Field kinds for the varargs list that follows the message. */
enum sl_log_field {
  SL_LF_END = 0,  /* terminates the list */
  SL_LF_STR,      /* const char *key, const char *value (NULL prints null) */
  SL_LF_INT,      /* const char *key, int64_t value */
  SL_LF_ERR,      /* int err -> "error":"<sl_strerror>", "error.code":"<name>" */
};

enum sl_log_format {
  SL_LOG_FMT_JSON = 0,  /* default: one JSON object per line */
  SL_LOG_FMT_TEXT,      /* "TIME LEVEL component: message key=value" */
};

void sl_log_set_level(enum sl_log_level lvl);
enum sl_log_level sl_log_get_level(void);
/* "debug"|"info"|"warn"|"warning"|"error" -> level; -1 if unknown. */
int sl_log_level_parse(const char *s);
void sl_log_set_format(enum sl_log_format f);
enum sl_log_format sl_log_get_format(void);
/* "json"|"text" -> format; -1 if unknown. */
int sl_log_format_parse(const char *s);
/* Redirect output (tests); a negative fd restores stderr. Also forgets
 * the rate-limit history. log.level is printed as debug|info|warn|error.
 * SL_LF_INT values must be int64_t (cast literals). A record over 64 KiB
 * is replaced by one without fields ("log.component" names the source). */
void sl_log_set_fd(int fd);

/* sl_log(SL_LOG_WARN, "tail", "file truncated",
 *        SL_LF_STR, "path", path, SL_LF_INT, "offset", (int64_t)off,
 *        SL_LF_END); */
void sl_log(enum sl_log_level lvl, const char *component, const char *msg, ...);

#define SL_LOG_ENABLED(lvl) ((lvl) >= sl_log_get_level())

#endif
