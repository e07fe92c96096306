/* replay.c - `sluice-collector replay`: archive files back into
 * Elasticsearch through the collector's indexer (tools.h). */
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "archive.h"
#include "config.h"
#include "indexer.h"
#include "sl_err.h"
#include "sl_log.h"
#include "sl_time.h"

#define NS_PER_HOUR (3600 * SL_NS_PER_SEC)
/* A record handed to the indexer: big enough for full _bulk requests,
 * small enough that max_pending_events keeps several in flight. */
#define REC_MAX_EVENTS 1000u
#define REC_MAX_BYTES (1u << 20)

struct replay {
  uv_loop_t loop;
  struct sl_indexer *ix;
  uv_check_t feeder;          /* offers records after each iteration */
  uv_timer_t progress;
  struct sl_archive_file *files;
  size_t nfiles, next_file;
  struct sl_archive_reader rd;
  int reading;                /* rd is open on files[next_file - 1] */
  int64_t since_ns, until_ns; /* INT64_MIN / INT64_MAX when not given */
  int64_t fallback_ns;        /* start of the current file's hour */
  struct sl_spool_rec held;   /* built, refused (full): offered again */
  int have_held;
  uint64_t next_id;
  uint64_t records, records_done;
  uint64_t read, filtered, read_errors;
  struct sl_buf ds;           /* scratch for sl_archive_event_key */
  struct sl_indexer_counts k; /* taken before the indexer closes */
  int eof, stopping;
};

static void
counts_line(struct replay *r, FILE *fp, const char *prefix)
{
  struct sl_indexer_counts k = r->k;

  if (!r->stopping)
    sl_indexer_counts(r->ix, &k);
  fprintf(fp, "%sread %llu, indexed %llu, already present %llu, "
          "failed %llu", prefix, (unsigned long long)r->read,
          (unsigned long long)k.created, (unsigned long long)k.duplicates,
          (unsigned long long)(k.dead_lettered + r->read_errors));
  if (r->filtered)
    fprintf(fp, ", outside the time range %llu",
            (unsigned long long)r->filtered);
  fprintf(fp, " (files %zu/%zu)\n", r->next_file, r->nfiles);
  fflush(fp);
}

static int
in_range(const struct replay *r, const struct sl_archive_file *f)
{
  int64_t lo = f->hour * NS_PER_HOUR, hi = lo + NS_PER_HOUR - 1;

  /* The sidecar's range is exact; without one the file's hour bounds
   * the events that the collector dated (a fallback can be older). */
  if (f->has_idx && f->idx.count) {
    lo = f->idx.min_ns;
    hi = f->idx.max_ns;
  } else if (!f->has_idx) {
    return 1;
  }
  return hi >= r->since_ns && lo <= r->until_ns;
}

/* Next line of the archive, opening files as needed: 1, 2 when a file
 * ended (records do not span files: each has its file's fallback time),
 * 0 at the end. */
static int
next_line(struct replay *r, const char **line, size_t *len)
{
  int rc;

  for (;;) {
    if (!r->reading) {
      const struct sl_archive_file *f;

      while (r->next_file < r->nfiles &&
             !in_range(r, &r->files[r->next_file]))
        r->next_file++;
      if (r->next_file == r->nfiles)
        return 0;
      f = &r->files[r->next_file++];
      rc = sl_archive_reader_open(&r->rd, f->path);
      if (rc) {
        fprintf(stderr, "replay: %s: %s\n", f->path, sl_strerror(rc));
        r->read_errors++;
        continue;
      }
      r->fallback_ns = f->hour * NS_PER_HOUR;
      r->reading = 1;
    }
    rc = sl_archive_reader_next(&r->rd, line, len);
    if (rc == 1)
      return 1;
    if (rc < 0) {
      fprintf(stderr, "replay: %s: %s\n", r->files[r->next_file - 1].path,
              sl_strerror(rc));
      r->read_errors++;
    }
    sl_archive_reader_close(&r->rd);
    r->reading = 0;
    return 2;
  }
}

/* Build the next record (NDJSON events of one file); 0 when none left. */
static int
build(struct replay *r)
{
  struct sl_buf b;
  const char *line;
  size_t len;
  uint32_t n = 0;
  int rc = 0;

  sl_buf_init(&b, 0);
  while (n < REC_MAX_EVENTS && b.len < REC_MAX_BYTES) {
    int got = next_line(r, &line, &len);

    if (got == 2 && n)
      break;
    if (got == 2)
      continue;
    if (got == 0) {
      r->eof = 1;
      break;
    }
    if (r->since_ns != INT64_MIN || r->until_ns != INT64_MAX) {
      int64_t ts;

      sl_buf_reset(&r->ds);
      if (sl_archive_event_key(line, len, r->fallback_ns, &r->ds, &ts,
                               NULL) == 0 &&
          (ts < r->since_ns || ts > r->until_ns)) {
        r->filtered++;
        continue;
      }
    }
    rc = sl_buf_append(&b, line, len);
    if (!rc)
      rc = sl_buf_append_byte(&b, '\n');
    if (rc)
      break;
    n++;
    r->read++;
  }
  if (rc || n == 0) {
    sl_buf_free(&b);
    return rc;
  }
  memset(&r->held, 0, sizeof r->held);
  r->held.id = ++r->next_id;
  r->held.len = b.len;
  r->held.cap = b.cap;
  r->held.data = sl_buf_take(&b, &r->held.len);
  r->held.nevents = n;
  r->held.version = 2;
  r->held.append_ns = (uint64_t)r->fallback_ns;
  r->have_held = 1;
  return 0;
}

static void finish(struct replay *r);

static void
on_done(void *arg, uint64_t rec_id)
{
  struct replay *r = arg;

  (void)rec_id;
  r->records_done++;
}

static void
feed(struct replay *r)
{
  int rc;

  while (!r->stopping) {
    if (!r->have_held) {
      if (r->eof)
        break;
      rc = build(r);
      if (rc) {
        fprintf(stderr, "replay: %s\n", sl_strerror(rc));
        r->read_errors++;
        r->eof = 1;
        break;
      }
      if (!r->have_held)
        continue;
    }
    rc = sl_indexer_submit(r->ix, &r->held, on_done, r);
    if (rc == SL_EAGAIN)
      return;
    r->have_held = 0;
    if (rc != 0) {
      fprintf(stderr, "replay: indexer refused a batch: %s\n",
              sl_strerror(rc));
      free(r->held.data);
      r->read_errors += r->held.nevents;
      continue;
    }
    r->records++;
  }
  if (r->eof && !r->have_held && r->records_done == r->records)
    finish(r);
}

static void
on_feeder(uv_check_t *h)
{
  feed(h->data);
}

static void
on_progress(uv_timer_t *t)
{
  counts_line(t->data, stderr, "replay: ");
}

static void
on_ix_closed(void *arg)
{
  (void)arg;
}

static void
finish(struct replay *r)
{
  if (r->stopping)
    return;
  sl_indexer_counts(r->ix, &r->k);
  r->stopping = 1;
  uv_close((uv_handle_t *)&r->feeder, NULL);
  uv_close((uv_handle_t *)&r->progress, NULL);
  sl_indexer_close(r->ix, 10000, on_ix_closed, r);
}

static int
parse_time(const char *s, int64_t *ns)
{
  return sl_time_parse_any(s, strlen(s), ns);
}

static int
usage(const char *why)
{
  fprintf(stderr, "sluice-collector replay: %s\nusage: sluice-collector -c "
          "FILE replay --from DIR [--dataset D] [--since T] [--until T]\n",
          why);
  return 2;
}

int
sl_replay_main(const struct sl_conf *conf, int argc, char **argv)
{
  const json_t *root = sl_conf_root(conf);
  const char *from = NULL, *dataset = NULL;
  struct sl_es_conf es;
  struct replay *r;
  char err[1024] = "";
  int i, rc, code = 1;

  r = calloc(1, sizeof *r);
  if (r == NULL)
    return 1;
  r->since_ns = INT64_MIN;
  r->until_ns = INT64_MAX;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

    if (v == NULL) {
      free(r);
      return usage("missing value");
    }
    if (strcmp(a, "--from") == 0)
      from = v;
    else if (strcmp(a, "--dataset") == 0)
      dataset = v;
    else if ((strcmp(a, "--since") == 0 && parse_time(v, &r->since_ns)) ||
             (strcmp(a, "--until") == 0 && parse_time(v, &r->until_ns))) {
      free(r);
      return usage("bad time (RFC 3339 or epoch)");
    } else if (strcmp(a, "--since") != 0 && strcmp(a, "--until") != 0) {
      free(r);
      return usage("unknown argument");
    }
    i++;
  }
  if (from == NULL) {
    free(r);
    return usage("--from DIR is required");
  }
  if (sl_conf_get(root, "elasticsearch") == NULL) {
    free(r);
    fprintf(stderr, "sluice-collector replay: the config has no "
            "elasticsearch: section\n");
    return 2;
  }
  rc = sl_archive_list(from, dataset, &r->files, &r->nfiles);
  if (rc) {
    fprintf(stderr, "replay: %s: %s\n", from, sl_strerror(rc));
    free(r);
    return 1;
  }
  rc = sl_es_conf_fill(sl_conf_get(root, "elasticsearch"),
                       sl_conf_str(root, "data_dir"), &es, err, sizeof err);
  if (rc) {
    fprintf(stderr, "sluice-collector replay: %s\n", err);
    sl_archive_files_free(r->files, r->nfiles);
    free(r);
    return 2;
  }
  sl_buf_init(&r->ds, 0);
  uv_loop_init(&r->loop);
  rc = sl_indexer_new(&r->loop, &es, &r->ix, err, sizeof err);
  if (rc == 0)
    rc = sl_indexer_start(r->ix);
  if (rc) {
    fprintf(stderr, "replay: cannot start the indexer: %s\n",
            err[0] ? err : sl_strerror(rc));
    if (r->ix)
      sl_indexer_close(r->ix, 0, on_ix_closed, r);
    goto out;
  }
  fprintf(stderr, "replay: %zu files under %s\n", r->nfiles, from);
  uv_check_init(&r->loop, &r->feeder);
  r->feeder.data = r;
  uv_check_start(&r->feeder, on_feeder);
  uv_timer_init(&r->loop, &r->progress);
  r->progress.data = r;
  uv_timer_start(&r->progress, on_progress, 1000, 1000);
  feed(r);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  counts_line(r, stdout, "replay done: ");
  code = r->k.dead_lettered || r->read_errors ? 1 : 0;
out:
  if (r->reading)
    sl_archive_reader_close(&r->rd);
  if (r->have_held)
    free(r->held.data);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
  sl_es_conf_free(&es);
  sl_buf_free(&r->ds);
  sl_archive_files_free(r->files, r->nfiles);
  free(r);
  return code;
}
