"""The golden case closes to exactly its expected invoices and lines."""

from decimal import Decimal

from tests.conftest import assert_closes_to_golden


def test_golden_month_closes_to_the_cent(golden):
    result = golden.close("2026-10")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_closes_to_golden(golden)
    (invoices, total), = golden.query(
        "SELECT count(*), sum(total) FROM marts.invoices WHERE billing_month = DATE '2026-10-01'"
    )
    assert (invoices, total) == (7, Decimal("333.02"))
    assert "333.02" in result.stdout


def test_money_columns_are_decimal_in_the_marts(golden):
    assert golden.close("2026-10").returncode == 0
    types = dict(
        golden.query(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'marts' AND table_name IN ('invoices', 'invoice_lines')"
        )
    )
    for column in ("invoices.subtotal", "invoices.credits_applied", "invoices.taxable_amount",
                   "invoices.tax_amount", "invoices.total", "invoice_lines.amount"):
        assert types[column] == "DECIMAL(18,2)", column
    assert types["invoices.tax_rate"] == "DECIMAL(9,6)"
    assert types["invoice_lines.quantity"] == "DECIMAL(18,6)"
    assert not [c for c, t in types.items() if t in ("DOUBLE", "FLOAT", "REAL")]


def test_redelivered_file_is_counted_once(golden):
    assert golden.close("2026-10").returncode == 0
    loads = {row[0]: row[1:] for row in golden.query(
        "SELECT file, rows_read, accepted, redelivered, quarantined FROM audit.file_loads "
        "WHERE billing_month = DATE '2026-10-01'"
    )}
    assert loads["usage/dt=2026-10-15/part-1-redelivery.parquet"] == (109, 0, 109, 0)
    assert loads["usage/dt=2026-10-15/part-0.parquet"] == (109, 109, 0, 0)
    assert len(loads) == 32
    for file, (read, accepted, redelivered, quarantined) in loads.items():
        assert read == accepted + redelivered + quarantined, file
    # Every accepted row reaches staging once: per-file counts agree with the ingestion's.
    staged = dict(golden.query("SELECT source_file, count(*) FROM raw.usage_month GROUP BY 1"))
    assert {f: v[1] for f, v in loads.items() if v[1]} == staged
    assert golden.query("SELECT count(*) FROM audit.redeliveries")[0][0] == 109
