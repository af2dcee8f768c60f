"""mask versions: who saved a mask, from what, its pixel count, and an undone save's mark

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 21:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('masks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('saved_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('origin', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('pixels', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reverted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reverted_by', sa.String(length=200), nullable=True))
    op.execute("UPDATE masks SET origin = 'imported' WHERE kind = 'ground_truth'")


def downgrade() -> None:
    with op.batch_alter_table('masks', schema=None) as batch_op:
        batch_op.drop_column('reverted_by')
        batch_op.drop_column('reverted_at')
        batch_op.drop_column('pixels')
        batch_op.drop_column('origin')
        batch_op.drop_column('saved_by')
