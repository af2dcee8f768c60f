"""token roles: admin, user or worker (from is_admin), who made a token, when last used and revoked

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_api_tokens_created_by', 'api_tokens', ['created_by'], ['id'], ondelete='SET NULL')
    op.execute("UPDATE api_tokens SET role = CASE WHEN is_admin THEN 'admin' ELSE 'user' END")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('role', existing_type=sa.String(length=20), nullable=False)
        batch_op.drop_column('is_admin')


def downgrade() -> None:
    # Before 0004 a token could be neither revoked nor a worker's: such tokens are deleted
    # rather than given back a user's rights.
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_tokens_created_by', type_='foreignkey')
        batch_op.drop_column('created_by')
        batch_op.add_column(sa.Column('is_admin', sa.Boolean(), nullable=True))
    op.execute("DELETE FROM api_tokens WHERE revoked_at IS NOT NULL OR role = 'worker'")
    op.execute("UPDATE api_tokens SET is_admin = (role = 'admin')")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('is_admin', existing_type=sa.Boolean(), nullable=False)
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('role')
