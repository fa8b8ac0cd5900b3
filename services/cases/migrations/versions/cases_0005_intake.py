"""the service guide's fields, centre settings, imported cases

Revision ID: cases_0005
Revises: cases_0004
Create Date: 2026-12-03 06:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'cases_0005'
down_revision: str | None = 'cases_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # written by hand (services/cases/intake/models.py and the Item's guide columns)
    op.add_column('items', sa.Column('conditions', postgresql.JSONB(astext_type=sa.Text()),
                                     server_default=sa.text("'[]'::jsonb"), nullable=False, comment='申请条件'))
    op.add_column('items', sa.Column('procedure', postgresql.JSONB(astext_type=sa.Text()),
                                     server_default=sa.text("'[]'::jsonb"), nullable=False,
                                     comment='办理流程: [ProcedureStep]'))
    op.add_column('items', sa.Column('fee_basis', sa.Text(), nullable=True, comment='收费依据'))
    op.add_column('items', sa.Column('service_objects', postgresql.JSONB(astext_type=sa.Text()),
                                     server_default=sa.text("'[]'::jsonb"), nullable=False,
                                     comment='服务对象: [ServiceObject]'))
    op.create_table('case_imports',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('imported_by', sa.String(length=32), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False, comment='csv | json'),
    sa.Column('via', sa.String(length=8), nullable=False, comment='api | cli'),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('overdue', sa.Integer(), nullable=False, comment='cases already overdue at import'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_imports'))
    )
    op.create_table('imported_cases',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('legacy_no', sa.String(length=64), nullable=False, comment="the previous system's number"),
    sa.Column('case_no', sa.String(length=48), nullable=False),
    sa.Column('import_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['case_no'], ['cases.case_no'], name=op.f('fk_imported_cases_case_no_cases')),
    sa.ForeignKeyConstraint(['import_id'], ['case_imports.id'],
                            name=op.f('fk_imported_cases_import_id_case_imports')),
    sa.PrimaryKeyConstraint('center_id', 'legacy_no', name=op.f('pk_imported_cases')),
    sa.UniqueConstraint('case_no', name=op.f('uq_imported_cases_case_no'))
    )
    op.create_index(op.f('ix_imported_cases_import_id'), 'imported_cases', ['import_id'], unique=False)
    op.create_table('item_files',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('item_code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False, comment='the file name, as downloaded'),
    sa.Column('kind', sa.String(length=8), nullable=False, comment='form | sample'),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=32), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('form', 'sample')", name=op.f('ck_item_files_kind_known')),
    sa.ForeignKeyConstraint(['center_id', 'item_code'], ['items.center_id', 'items.code'],
                            name=op.f('fk_item_files_center_id_items')),
    sa.PrimaryKeyConstraint('center_id', 'item_code', 'name', name=op.f('pk_item_files'))
    )
    op.create_table('center_settings',
    sa.Column('center_id', sa.String(length=32), nullable=False),
    sa.Column('compression_target_percent', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('compression_target_percent IN (30, 50)', name=op.f('ck_center_settings_target_known')),
    sa.PrimaryKeyConstraint('center_id', name=op.f('pk_center_settings'))
    )


def downgrade() -> None:
    op.drop_table('center_settings')
    op.drop_table('item_files')
    op.drop_index(op.f('ix_imported_cases_import_id'), table_name='imported_cases')
    op.drop_table('imported_cases')
    op.drop_table('case_imports')
    for column in ('service_objects', 'fee_basis', 'procedure', 'conditions'):
        op.drop_column('items', column)
