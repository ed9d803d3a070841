#!/usr/bin/env bash
# `make test`: install what the tests need, make sure PostgreSQL/Redis/RabbitMQ are up, create a
# fresh database and run the whole suite (unit + integration) on PostgreSQL. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh test
scripts/ensure_services.sh
export PATH="/usr/sbin:$PATH"
export DATABASE_URL=${MEV_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mev_ci}
export MEV_DATA_DIR=${MEV_TEST_DATA_DIR:-$(mktemp -d /tmp/mev-test-data.XXXXXX)}
export MEV_TEST_REDIS_URL=${MEV_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
export MEV_TEST_RABBITMQ_URL=${MEV_TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672//}
db=${DATABASE_URL##*/}
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$db\""
.venv/bin/ruff check .
.venv/bin/python manage.py makemigrations --check --dry-run
# --create-db: the test database is dropped and created anew on every run.
.venv/bin/python -m pytest --create-db "$@"
