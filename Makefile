# Two commands from a fresh clone (README.md: Quick start):
#   make study   the environment, then the default study -> reports/report.html
#   make test    the environment with the test extras and system packages, then the test suite
# Both are idempotent: a second call installs nothing unless pyproject.toml changed (the stamp
# files in .venv/ are older than it), then reruns only what Snakemake or pytest must run.

PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch 2.13.0 (this project's machines keep its wheel on disk; elsewhere pip
# fetches it). For a GPU machine: make study TORCH="torch==2.13.0 --index-url <CUDA wheel index>".
TORCH ?= torch==2.13.0
CORES ?= all
# pytest-xdist workers: every test file runs in one worker (its module fixtures are built once),
# two files at a time; the suite left one of the two cores idle most of the time when serial.
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
# Root installs system packages itself; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: study test test-fast system-packages clean-venv

study: $(VENV)/.installed-study
	$(BIN)/snakemake --cores $(CORES)

test: $(VENV)/.installed-test system-packages
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

# The quick tier, before every commit: all but the real-Snakemake, SLURM, browser and slow tests
# (markers: tests/conftest.py). Measured: see docs/contributing.md.
test-fast: $(VENV)/.installed-test
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not workflow and not slurm and not browser and not slow"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, so no other requirement pulls a multi-GB CUDA build of it.
$(VENV)/.installed-study: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# Debian packages the tests use: Chromium (the report in a real headless browser), SLURM and
# munge (the single-node cluster of tests/workflow/test_slurm.py). Installed only when missing.
system-packages:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v slurmctld >/dev/null 2>&1 || missing="$$missing slurm-wlm slurmd slurmctld slurm-client munge"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

clean-venv:
	rm -rf $(VENV)
