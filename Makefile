# The two commands: `make run` (the whole system on embedded defaults) and `make test`.
.PHONY: run test bench lint install

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

bench:
	@bash scripts/venv.sh test && .venv/bin/python bench/run_all.py

lint:
	@bash scripts/venv.sh test && .venv/bin/ruff check .

install:
	@bash scripts/venv.sh
