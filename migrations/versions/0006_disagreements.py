"""disagreement scores stored per model and image content (the worker ranks a split's
unlabelled images when it trains a model)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disagreements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('disagreement', sa.Float(), nullable=False),
    sa.Column('student_sam_dice', sa.Float(), nullable=True),
    sa.Column('student_pixels', sa.Integer(), nullable=False),
    sa.Column('sam_pixels', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'sha256')
    )


def downgrade() -> None:
    op.drop_table('disagreements')
