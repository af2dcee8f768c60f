"""workers without the API's disk: a job's run files (for resuming elsewhere) and each
attempt's worker; the device a job asks for; a trained model's checkpoint may be a blob (no path)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('workers', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('run_files', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('device', sa.String(length=10), server_default='any', nullable=False))
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.alter_column('checkpoint_path', existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    # a model whose checkpoint is a blob has no path before 0005: it is named by its blob's place
    op.execute("UPDATE models SET checkpoint_path = 'blobs/' || substr(sha256, 1, 2) || '/' || substr(sha256, 3) "
               "WHERE checkpoint_path IS NULL")
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.alter_column('checkpoint_path', existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('device')
        batch_op.drop_column('run_files')
        batch_op.drop_column('workers')
