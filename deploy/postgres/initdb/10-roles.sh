#!/bin/sh
# Runs once, when the PostgreSQL volume is new (the postgres image runs the files of
# /docker-entrypoint-initdb.d). Metabase's two logins:
#   metabase_reader  reads atende's analytics views only (a member of atende_analytics;
#                    migration 0008 grants that role SELECT on schema analytics)
#   metabase         owns the database "metabase", where Metabase keeps its own settings
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v analytics_password="$ANALYTICS_DB_PASSWORD" \
    -v metabase_password="$METABASE_DB_PASSWORD" <<'SQL'
CREATE ROLE atende_analytics NOLOGIN;
CREATE ROLE metabase_reader LOGIN PASSWORD :'analytics_password' IN ROLE atende_analytics;
ALTER ROLE metabase_reader SET default_transaction_read_only = on;
ALTER ROLE metabase_reader SET statement_timeout = '60s';
CREATE ROLE metabase LOGIN PASSWORD :'metabase_password';
CREATE DATABASE metabase OWNER metabase;
REVOKE ALL ON DATABASE metabase FROM PUBLIC;
SQL
