# posecore: the two commands of the README.
#   make demo   generate the bundled synthetic archive and run the whole workflow on it
#   make test   lint (ruff, snakefmt, snakemake --lint) and run the test suite
# Both set up what they need on a fresh machine that has only Python, and are quick the
# second time (the virtual environment is rebuilt only when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
# torch is installed first and pinned: a range would let pip pull a newer build with
# gigabytes of CUDA packages. Change it here (and in environment.yml) on purpose only.
TORCH ?= torch==2.13.0

.PHONY: install ffmpeg demo test lint clean

install: $(VENV)/.installed ffmpeg

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# ffmpeg and ffprobe executables: Debian's package when we may install it, else say how.
ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else \
	    echo "posecore needs ffmpeg and ffprobe on PATH: install them (apt-get install ffmpeg," \
	         "or conda env create -f environment.yml)" >&2; exit 1; \
	  fi; }

demo: install
	$(BIN)/posecore synth data/demo
	$(BIN)/snakemake --cores $(CORES)
	@echo "QC report:    results/qc/demo/report.html"
	@echo "Trajectories: results/trajectories/demo/"

# snakemake --lint parses the workflow with the bundled config, whose video sheet must name
# files that exist: the demo archive is generated first (a few seconds; nothing if already there).
lint: install
	$(BIN)/posecore synth data/demo
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check workflow
	$(BIN)/snakemake --lint --cores 1

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf results logs .snakemake data/demo
