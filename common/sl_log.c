#include "sl_log.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_fs.h"
#include "sl_hash.h"
#include "sl_json.h"
#include "sl_time.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

/* One record never exceeds this; a longer one is cut to its message and
 * tagged "log.truncated" so that a huge field cannot stall the writer. */
#define SL_LOG_MAX_LINE (64 * 1024)
/* Repeats of one (component, message) inside this window are counted. */
#define SL_LOG_WINDOW_MS 1000
/* Records of one kind printed per window before repeats are swallowed: a
 * few let distinct events of the same kind through ("file opened" for ten
 * files), while a flood still costs one summary line per second. */
#define SL_LOG_BURST 10
/* Direct-mapped table of recent keys. A collision only evicts (after
 * printing its summary), so the table size bounds memory, not correctness. */
#define SL_LOG_SLOTS 64

struct rl_slot {
  uint64_t key;          /* hash of component NUL message; 0 = free */
  uint64_t window_start; /* mono ms the current window began */
  uint64_t printed;      /* records printed in this window */
  uint64_t suppressed;   /* records swallowed in this window */
  enum sl_log_level lvl;
  char component[48];    /* copies for the summary line (truncated) */
  char message[160];
};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_level = SL_LOG_INFO;  /* read/written with __atomic */
static int log_fd = 2;               /* guarded by log_mu */
static struct rl_slot rl_table[SL_LOG_SLOTS]; /* guarded by log_mu */

static int log_format = SL_LOG_FMT_JSON;  /* __atomic, like log_level */

static const char *const level_names[] = { "debug", "info", "warn", "error" };
/* Padded to one width so that text lines line up at the component. */
static const char *const text_levels[] = { " DEBUG ", " INFO  ", " WARN  ",
                                           " ERROR " };

void
sl_log_set_level(enum sl_log_level lvl)
{
  __atomic_store_n(&log_level, (int)lvl, __ATOMIC_RELAXED);
}

enum sl_log_level
sl_log_get_level(void)
{
  return (enum sl_log_level)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int
sl_log_level_parse(const char *s)
{
  if (s == NULL)
    return -1;
  if (strcasecmp(s, "debug") == 0)
    return SL_LOG_DEBUG;
  if (strcasecmp(s, "info") == 0)
    return SL_LOG_INFO;
  if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
    return SL_LOG_WARN;
  if (strcasecmp(s, "error") == 0)
    return SL_LOG_ERROR;
  return -1;
}

void
sl_log_set_format(enum sl_log_format f)
{
  __atomic_store_n(&log_format, (int)f, __ATOMIC_RELAXED);
}

enum sl_log_format
sl_log_get_format(void)
{
  return (enum sl_log_format)__atomic_load_n(&log_format, __ATOMIC_RELAXED);
}

int
sl_log_format_parse(const char *s)
{
  if (s == NULL)
    return -1;
  if (strcasecmp(s, "json") == 0)
    return SL_LOG_FMT_JSON;
  if (strcasecmp(s, "text") == 0)
    return SL_LOG_FMT_TEXT;
  return -1;
}

/* Any negative fd restores stderr (the header's "NULL"). */
void
sl_log_set_fd(int fd)
{
  pthread_mutex_lock(&log_mu);
  log_fd = fd < 0 ? 2 : fd;
  /* A new destination starts with a clean rate-limit memory so that tests
   * (and a re-opened log) see the first record of every kind. */
  memset(rl_table, 0, sizeof(rl_table));
  pthread_mutex_unlock(&log_mu);
}

/* A failing self-log write has nowhere left to be reported. */
static void
log_write(const struct sl_buf *b)
{
  (void)sl_fs_write_all(log_fd, b->p, b->len);
}

/* Text format: a value goes out bare unless a reader splitting the line
 * on spaces and '=' would get it wrong; then it is a JSON string. */
static int
needs_quotes(const char *v)
{
  const unsigned char *p = (const unsigned char *)v;

  if (*p == '\0')
    return 1;
  for (; *p; p++)
    if (*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f)
      return 1;
  return 0;
}

/* Component and message of a text line: as they are, unless a control
 * character would break the line. */
static int
put_text_word(struct sl_buf *b, const char *v)
{
  const unsigned char *p;

  for (p = (const unsigned char *)v; *p; p++)
    if (*p < ' ' || *p == 0x7f)
      return sl_json_str(b, v, strlen(v));
  return sl_buf_append_str(b, v);
}

static int
put_str_field(struct sl_buf *b, int text, const char *key, const char *val)
{
  int rc;

  if (text) {
    rc = sl_buf_append_byte(b, ' ');
    if (rc == 0)
      rc = sl_buf_append_str(b, key);
    if (rc == 0)
      rc = sl_buf_append_byte(b, '=');
    if (rc == 0)
      rc = val == NULL ? sl_buf_append(b, "null", 4)
           : needs_quotes(val) ? sl_json_str(b, val, strlen(val))
           : sl_buf_append_str(b, val);
    return rc;
  }
  rc = sl_buf_append_byte(b, ',');
  if (rc == 0)
    rc = sl_json_str(b, key, strlen(key));
  if (rc == 0)
    rc = sl_buf_append_byte(b, ':');
  if (rc == 0)
    rc = val ? sl_json_str(b, val, strlen(val))
             : sl_buf_append(b, "null", 4);
  return rc;
}

static int
put_int_field(struct sl_buf *b, int text, const char *key, int64_t v)
{
  int rc;

  if (text) {
    rc = sl_buf_append_byte(b, ' ');
    if (rc == 0)
      rc = sl_buf_append_str(b, key);
    if (rc == 0)
      rc = sl_buf_append_byte(b, '=');
    if (rc == 0)
      rc = sl_buf_append_i64(b, v);
    return rc;
  }
  rc = sl_buf_append_byte(b, ',');
  if (rc == 0)
    rc = sl_json_str(b, key, strlen(key));
  if (rc == 0)
    rc = sl_buf_append_byte(b, ':');
  if (rc == 0)
    rc = sl_buf_append_i64(b, v);
  return rc;
}

/* The fields every line starts with; no closing brace. */
static int
put_head(struct sl_buf *b, int text, enum sl_log_level lvl,
         const char *component, const char *msg)
{
  char ts[SL_TIME_RFC3339_MS_LEN + 1];
  int rc;

  sl_time_format_ms(sl_time_now_ns(), ts);
  if (text) {
    rc = sl_buf_append(b, ts, SL_TIME_RFC3339_MS_LEN);
    if (rc == 0)
      rc = sl_buf_append_str(b, text_levels[lvl]);
    if (rc == 0)
      rc = put_text_word(b, component);
    if (rc == 0)
      rc = sl_buf_append(b, ": ", 2);
    if (rc == 0)
      rc = put_text_word(b, msg);
    return rc;
  }
  rc = sl_buf_append(b, "{\"@timestamp\":\"", 15);
  if (rc == 0)
    rc = sl_buf_append(b, ts, SL_TIME_RFC3339_MS_LEN);
  if (rc == 0)
    rc = sl_buf_append(b, "\",\"log.level\":\"", 15);
  if (rc == 0)
    rc = sl_buf_append_str(b, level_names[lvl]);
  if (rc == 0)
    rc = sl_buf_append_byte(b, '"');
  if (rc == 0)
    rc = put_str_field(b, 0, "component", component);
  if (rc == 0)
    rc = put_str_field(b, 0, "message", msg);
  return rc;
}

static int
put_end(struct sl_buf *b, int text)
{
  return text ? sl_buf_append_byte(b, '\n') : sl_buf_append(b, "}\n", 2);
}

static int
put_fields(struct sl_buf *b, int text, va_list ap)
{
  enum sl_log_field kind;
  const char *key, *sval;
  int64_t ival;
  int err, rc = 0;

  while (rc == 0 && (kind = (enum sl_log_field)va_arg(ap, int)) != SL_LF_END) {
    switch (kind) {
    case SL_LF_STR:
      key = va_arg(ap, const char *);
      sval = va_arg(ap, const char *);
      rc = put_str_field(b, text, key, sval);
      break;
    case SL_LF_INT:
      key = va_arg(ap, const char *);
      ival = va_arg(ap, int64_t);
      rc = put_int_field(b, text, key, ival);
      break;
    case SL_LF_ERR:
      err = va_arg(ap, int);
      rc = put_str_field(b, text, "error", sl_strerror(err));
      if (rc == 0)
        rc = put_str_field(b, text, "error.code", sl_errname(err));
      break;
    default:
      /* An unknown kind means the list is misbuilt; reading further
       * would walk off the varargs. Say so in the record and stop. */
      return put_str_field(b, text, "log.bad_field", "unknown field kind");
    }
  }
  return rc;
}

/* Caller holds log_mu. */
static void
emit_summary(struct rl_slot *s)
{
  struct sl_buf b;
  int text = sl_log_get_format() == SL_LOG_FMT_TEXT;

  sl_buf_init(&b, SL_LOG_MAX_LINE);
  if (put_head(&b, text, s->lvl, s->component, s->message) == 0 &&
      put_int_field(&b, text, "repeated", (int64_t)s->suppressed) == 0 &&
      put_end(&b, text) == 0)
    log_write(&b);
  sl_buf_free(&b);
  s->suppressed = 0;
}

static void
copy_trunc(char *dst, size_t cap, const char *src)
{
  size_t n = strlen(src);

  if (n >= cap)
    n = sl_utf8_valid_prefix(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Decide under the lock whether this record prints. Returns 1 to print. */
static int
rate_admit(enum sl_log_level lvl, const char *component, const char *msg)
{
  struct rl_slot *s;
  uint64_t now, key, hc;

  hc = sl_hash64(component, strlen(component));
  key = (hc * 0x9E3779B97F4A7C15ULL) ^ sl_hash64(msg, strlen(msg));
  if (key == 0)
    key = 1;
  now = sl_time_mono_ms();
  s = &rl_table[(key >> 32) % SL_LOG_SLOTS];
  if (s->key == key && now - s->window_start < SL_LOG_WINDOW_MS) {
    if (s->printed < SL_LOG_BURST) {
      s->printed++;
      return 1;
    }
    s->suppressed++;
    return 0;
  }
  /* The window is over, or the slot is taken by another kind: report
   * what was swallowed before reusing the slot. */
  if (s->key != 0 && s->suppressed > 0)
    emit_summary(s);
  if (s->key != key) {
    s->key = key;
    copy_trunc(s->component, sizeof(s->component), component);
    copy_trunc(s->message, sizeof(s->message), msg);
  }
  s->lvl = lvl;
  s->window_start = now;
  s->printed = 1;
  s->suppressed = 0;
  return 1;
}

void
sl_log(enum sl_log_level lvl, const char *component, const char *msg, ...)
{
  struct sl_buf b;
  va_list ap;
  int rc, text;

  if ((int)lvl < __atomic_load_n(&log_level, __ATOMIC_RELAXED))
    return;
  if ((unsigned)lvl > SL_LOG_ERROR)
    lvl = SL_LOG_ERROR;
  if (component == NULL)
    component = "";
  if (msg == NULL)
    msg = "";
  /* Format outside the lock; only the admit check and write are serial. */
  text = sl_log_get_format() == SL_LOG_FMT_TEXT;
  sl_buf_init(&b, SL_LOG_MAX_LINE);
  rc = put_head(&b, text, lvl, component, msg);
  if (rc == 0) {
    va_start(ap, msg);
    rc = put_fields(&b, text, ap);
    va_end(ap);
  }
  if (rc == 0)
    rc = put_end(&b, text);
  if (rc != 0) {
    sl_buf_reset(&b);
    if (put_head(&b, text, lvl, "log",
                 "record too large, fields dropped") != 0 ||
        put_str_field(&b, text, "log.component", component) != 0 ||
        put_end(&b, text) != 0)
      goto out;
  }
  pthread_mutex_lock(&log_mu);
  if (rate_admit(lvl, component, msg))
    log_write(&b);
  pthread_mutex_unlock(&log_mu);
out:
  sl_buf_free(&b);
}
