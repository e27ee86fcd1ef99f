"""The throwaway servers of tests/services.py give what the shared-store tests expect."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.services import PostgresServer, S3Bucket, S3Server, ServiceError

PINNED_DUCKDB = "1.5.5"
EXTENSIONS = ("ducklake", "postgres_scanner", "httpfs")


def test_fresh_database_answers_select_1_through_its_connection_string(
    postgres_server: PostgresServer, postgres_database: str
):
    assert postgres_database.startswith(
        f"host=127.0.0.1 port={postgres_server.port} user=postgres "
    )
    psql = postgres_server.bin_dir / "psql"
    answer = subprocess.run(
        [str(psql), "--no-psqlrc", "-Atc", "select 1", postgres_database],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert answer.stdout.strip() == "1"


def test_two_fresh_databases_are_distinct(postgres_server: PostgresServer):
    first = postgres_server.fresh_database("same hint")
    second = postgres_server.fresh_database("same hint")
    postgres_server.psql("create table only_in_first (id int)", first)

    assert first != second
    assert postgres_server.psql("select to_regclass('only_in_first') is not null", first) == "t"
    assert postgres_server.psql("select to_regclass('only_in_first') is not null", second) == "f"


def test_cluster_is_on_loopback_with_durability_off(postgres_server: PostgresServer):
    settings = postgres_server.psql(
        "select string_agg(name || '=' || setting, ',' order by name) from pg_settings "
        "where name in ('listen_addresses', 'fsync', 'synchronous_commit', 'full_page_writes', "
        "'server_encoding')"
    )
    assert settings.split(",") == [
        "fsync=off",
        "full_page_writes=off",
        "listen_addresses=127.0.0.1",
        "server_encoding=UTF8",
        "synchronous_commit=off",
    ]


def test_a_password_role_owns_its_database_and_a_wrong_password_is_refused(
    postgres_server: PostgresServer,
):
    postgres_server.create_role("circlecost_owner", "right 'pass'")
    owned = postgres_server.fresh_database("owned", owner="circlecost_owner")
    assert "user=circlecost_owner" in owned

    postgres_server.psql("create table costs (usd numeric)", owned)
    assert postgres_server.psql("select current_user", owned) == "circlecost_owner"

    wrong = owned.replace("password='right \\'pass\\''", "password=wrong")
    assert wrong != owned
    with pytest.raises(
        ServiceError, match='password authentication failed for user "circlecost_owner"'
    ):
        postgres_server.psql("select 1", wrong)


def test_s3_bucket_round_trips_an_object(s3_server: str, s3_bucket: S3Bucket):
    assert s3_bucket.endpoint == s3_server
    assert s3_server.startswith("127.0.0.1:")
    assert s3_bucket.url == f"s3://{s3_bucket.bucket}/store/"
    assert s3_bucket.env == {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{s3_server}",
    }
    client = s3_bucket.client()
    client.put_object(Bucket=s3_bucket.bucket, Key="store/hello.txt", Body=b"costs")
    got = client.get_object(Bucket=s3_bucket.bucket, Key="store/hello.txt")
    assert got["Body"].read() == b"costs"


def test_each_s3_bucket_is_new_and_empty(s3_bucket: S3Bucket, s3_service: S3Server):
    other = s3_service.fresh_bucket("other")
    assert other.bucket != s3_bucket.bucket
    assert s3_bucket.client().list_objects_v2(Bucket=other.bucket)["KeyCount"] == 0


def _extension_file(name: str) -> Path:
    package = importlib.import_module(f"duckdb_extension_{name}")
    return next(Path(package.__path__[0]).rglob(f"{name}.duckdb_extension"))


def test_pinned_duckdb_runs_a_ducklake_with_its_catalog_in_postgres_and_data_on_s3(
    postgres_server: PostgresServer, s3_bucket: S3Bucket
):
    """The pinned wheels load offline (signed; no download) and work against both servers."""
    assert duckdb.__version__ == PINNED_DUCKDB
    postgres_server.create_role("circlecost_lake", "lake-pass")
    catalog = postgres_server.fresh_database("lake", owner="circlecost_lake")
    with duckdb.connect() as db:
        for name in EXTENSIONS:
            db.execute(f"LOAD '{_extension_file(name)}'")
        host, port = s3_bucket.endpoint.split(":")
        db.execute(
            "CREATE SECRET (TYPE s3, KEY_ID 'testing', SECRET 'testing', REGION 'us-east-1', "
            f"ENDPOINT '{host}:{port}', USE_SSL false, URL_STYLE 'path')"
        )
        db.execute(f"ATTACH 'ducklake:postgres:{catalog}' AS lake (DATA_PATH '{s3_bucket.url}')")
        db.execute("CREATE TABLE lake.costs AS SELECT range AS id FROM range(100)")
        assert db.execute("SELECT sum(id) FROM lake.costs").fetchone() == (4950,)

    listed = s3_bucket.client().list_objects_v2(Bucket=s3_bucket.bucket, Prefix="store/")
    assert [o["Key"].endswith(".parquet") for o in listed["Contents"]] == [True]
    tables = postgres_server.psql(
        "select count(*) > 0 from information_schema.tables where table_name = 'ducklake_table'",
        catalog,
    )
    assert tables == "t"
