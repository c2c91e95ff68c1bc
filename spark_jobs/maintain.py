"""Table maintenance: compaction, manifests, snapshot expiry and orphan files, per table policy.

    .venv/bin/python spark_jobs/maintain.py [--table bronze.sales_events]... [--namespace gold]... [--dry-run]

Each table's `maintenance:` section in catalog/tables/ says what is kept (see
lakehouse/medallion/maintenance.py). Prints each table's data files, average file size,
snapshots and manifests before and after, and the time taken. Exits non-zero on failure.
"""

import sys

from lakehouse.medallion.maintenance import main

if __name__ == "__main__":
    sys.exit(main())
