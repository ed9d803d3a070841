#!/usr/bin/env bash
# `make run`: install and start the whole system on embedded defaults (SQLite, local storage,
# local runner, a filesystem broker): gunicorn on 127.0.0.1:8000, a Celery worker with beat.
set -euo pipefail
cd "$(dirname "$0")/.."
start_ns=$(date +%s%N)
scripts/venv.sh
export DJANGO_SETTINGS_MODULE=mev.settings
PORT=${MEV_PORT:-8000}
.venv/bin/python manage.py migrate --noinput >/dev/null
.venv/bin/python manage.py collectstatic --noinput >/dev/null
if .venv/bin/python manage.py help install_operations >/dev/null 2>&1; then
  .venv/bin/python manage.py install_operations >/dev/null
fi
mkdir -p data/logs
.venv/bin/celery -A mev worker --beat --loglevel=INFO --concurrency=2 \
  --schedule data/celerybeat-schedule >data/logs/celery.log 2>&1 &
worker=$!
MEV_GUNICORN_BIND="127.0.0.1:$PORT" MEV_GUNICORN_WORKERS=${MEV_GUNICORN_WORKERS:-3} \
  .venv/bin/gunicorn --config deploy/gunicorn.conf.py >data/logs/gunicorn.log 2>&1 &
web=$!
trap 'kill $web $worker 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
up() { .venv/bin/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/api/', timeout=2)" \
       >/dev/null 2>&1; }
for _ in $(seq 1 300); do
  up && break
  kill -0 $web 2>/dev/null || { echo "gunicorn did not start; see data/logs/gunicorn.log"; exit 1; }
  sleep 0.2
done
up || { echo "gunicorn is not answering on port $PORT; see data/logs/gunicorn.log"; exit 1; }
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
elapsed="$((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))"
cat <<MSG

WebMEV is up (ready in ${elapsed}s): http://127.0.0.1:$PORT/api/
  API docs:   http://127.0.0.1:$PORT/api/docs/
  Admin:      http://127.0.0.1:$PORT/admin/
  Create a user (in another terminal):
    .venv/bin/python manage.py create_user --email you@example.org --password 'a-long-pass-phrase' --admin
  Logs: data/logs/gunicorn.log, data/logs/celery.log. Stop with Ctrl-C.
MSG
wait -n $web $worker
