"""pseudo-label quality: the label the strategy made, and the teacher's true-box ceiling

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 05:25:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pseudo_label_quality', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pseudo_dice', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('truebox_dice', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pseudo_label_quality', schema=None) as batch_op:
        batch_op.drop_column('truebox_dice')
        batch_op.drop_column('pseudo_dice')
