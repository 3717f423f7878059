"""Reads a fleet's prediction log in an S3 bucket as a hive-partitioned dataset, with
pyarrow and with polars, and prints the row count of each table.

    python3 read_bucket.py ENDPOINT BUCKET PREFIX
"""

import sys

import polars as pl
import pyarrow.dataset as ds
from pyarrow import fs

endpoint, bucket, prefix = sys.argv[1:4]
s3 = fs.S3FileSystem(
    endpoint_override=endpoint, scheme="http", access_key="testing", secret_key="testing", region="us-east-1"
)
for table in ["predictions", "outcomes"]:
    dataset = ds.dataset(f"{bucket}/{prefix}/{table}", filesystem=s3, format="parquet", partitioning="hive")
    models = set(dataset.to_table(columns=["model"]).column("model").to_pylist())
    print(f"pyarrow {table} {dataset.count_rows()} models {sorted(models)}")

options = {
    "aws_endpoint_url": endpoint,
    "aws_allow_http": "true",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_region": "us-east-1",
}
frame = pl.scan_parquet(
    f"s3://{bucket}/{prefix}/predictions/**/*.parquet", storage_options=options, hive_partitioning=True
)
print(f"polars predictions {frame.select(pl.len()).collect().item()}")
