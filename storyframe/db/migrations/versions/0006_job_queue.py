"""job queue: the PostgreSQL task queue's tables (pgqueuer), for `storyframe worker`

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:30:00.000000

SQLite has no workers (its generations run in the API process), so nothing is made there. The
statements are pgqueuer's own, for the names in `storyframe.db.queue_schema`; they are many
statements in one text, which only the driver's simple query protocol runs, hence the raw
connection.
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.util import await_only

from storyframe.db.queue_schema import install_sql, uninstall_sql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run(sql: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    driver = bind.connection.driver_connection
    assert driver is not None
    await_only(driver.execute(sql))


def upgrade() -> None:
    _run(install_sql())


def downgrade() -> None:
    _run(uninstall_sql())
