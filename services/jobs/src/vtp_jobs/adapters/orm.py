"""Tables of the jobs database."""

import sqlalchemy as sa

from vtp_runtime.db.delivery_tables import add_delivery_tables

metadata = sa.MetaData()
outbox, processed_events = add_delivery_tables(metadata)
