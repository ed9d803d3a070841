# The two commands: `make run` (the whole system on embedded defaults) and `make test`.
.PHONY: run test test-fast bench lint install

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

# The suite without tests/integration (no nginx, gunicorn, brokers or Toil started): ~4x quicker for local work.
test-fast:
	@bash scripts/test.sh --ignore=tests/integration

bench:
	@bash scripts/venv.sh test && .venv/bin/python bench/run_all.py

lint:
	@bash scripts/venv.sh test && .venv/bin/ruff check .

install:
	@bash scripts/venv.sh
