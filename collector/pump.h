#ifndef SL_COLLECTOR_PUMP_H
#define SL_COLLECTOR_PUMP_H

/* What the collector's pump (collector.c) does with a spool record after
 * sl_archive_submit or sl_indexer_submit returned rc. A pure function of
 * rc, kept apart so that a unit test can check every answer without
 * failing malloc inside a running collector. */

#include "sl_err.h"

enum sl_pump_next {
  SL_PUMP_TAKEN,   /* the leg has the record; its done callback follows */
  SL_PUMP_WAIT,    /* full: offer it again after a leg finishes (the
                      uv_check runs after every callback) */
  SL_PUMP_RETRY,   /* out of memory: offer it again a little later. Not
                      refused: a refused record is never released, so
                      its segment outlives spool.max_bytes and, when the
                      archive refused, its ES leg would be skipped */
  SL_PUMP_REFUSED  /* the leg is closing (shutdown): the record stays in
                      the spool and is delivered again after a restart */
};

/* Every error the two submit functions return is listed: SL_ECLOSED
 * (closing), SL_EAGAIN (full) and SL_ENOMEM (allocations). Anything else
 * would be new; it is retried rather than dropping a leg, and logged. */
static inline enum sl_pump_next
sl_pump_next(int rc)
{
  switch (rc) {
  case 0:
    return SL_PUMP_TAKEN;
  case SL_EAGAIN:
    return SL_PUMP_WAIT;
  case SL_ECLOSED:
    return SL_PUMP_REFUSED;
  default:
    return SL_PUMP_RETRY;
  }
}

#endif
