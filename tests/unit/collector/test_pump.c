/* What the collector's pump does with each answer of the archive's and
 * the indexer's submit (collector/pump.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pump.h"
#include "sl_err.h"

/* Regression: SL_ENOMEM from sl_archive_submit or sl_indexer_submit
 * refused the record until a restart: never released from the spool, its
 * fan kept forever, and after an archive refusal the ES leg skipped. It
 * is offered again (on a timer), like SL_EAGAIN but without waiting for a
 * leg to finish. */
static void
test_pump_enomem_retried_not_refused(void **state)
{
  (void)state;
  assert_int_equal(sl_pump_next(SL_ENOMEM), SL_PUMP_RETRY);
}

/* The other answers keep their meaning: taken, full (wait for a done
 * callback), closing (shutdown: delivered again after the restart). */
static void
test_pump_other_answers(void **state)
{
  (void)state;
  assert_int_equal(sl_pump_next(0), SL_PUMP_TAKEN);
  assert_int_equal(sl_pump_next(SL_EAGAIN), SL_PUMP_WAIT);
  assert_int_equal(sl_pump_next(SL_ECLOSED), SL_PUMP_REFUSED);
}

/* An error neither submit returns today is retried, not refused: no leg
 * is skipped silently should one appear. */
static void
test_pump_unknown_error_retried(void **state)
{
  (void)state;
  assert_int_equal(sl_pump_next(SL_EIO), SL_PUMP_RETRY);
  assert_int_equal(sl_pump_next(SL_EINVAL), SL_PUMP_RETRY);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pump_enomem_retried_not_refused),
    cmocka_unit_test(test_pump_other_answers),
    cmocka_unit_test(test_pump_unknown_error_retried),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
