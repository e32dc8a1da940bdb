#!/bin/sh
# metrics.sh on a PostgreSQL store (skipped without $TASKHOST_TEST_PG): the same jobs and
# checks, and the store's connection cut and let through again.
METRICS_PG=1
. "$(dirname "$0")/metrics.sh"
