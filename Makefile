# The two commands of the README, each doing its own set-up:
#   make run    the main job on the default grid (grids/quick.toml), ending in laws CSVs
#   make test   the test suite (swift test -c release), after starting a single-node
#               Slurm on localhost (.ci/slurm-up.sh) for the Slurm array test
# `make deps` installs the system packages when they are missing (Debian/Ubuntu).

SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libgsl-dev pkg-config librsvg2-bin
RLSCALE := .build/release/rlscale

.PHONY: deps build run test bench

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openblas gsl || ! command -v rsvg-convert >/dev/null 2>&1; then \
		echo "installing $(APT_PACKAGES)"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update && $$SUDO apt-get install -y $(APT_PACKAGES); \
	fi

build: deps
	$(SWIFT) build -c release

# The suite drives the rlscale binary itself (resume and Slurm tests), so build it first.
test: deps
	.ci/slurm-up.sh
	$(SWIFT) build -c release
	$(SWIFT) test -c release

bench: build
	$(RLSCALE) bench

# The main job: run the grid, write the study's shipped tables (results/quick/runs.csv and
# cells.csv), fit the laws into analysis/quick/.
run: build
	$(RLSCALE) run grids/quick.toml
	$(RLSCALE) export results/quick --out results/quick
	$(RLSCALE) export results/quick --format runs --out results/quick
	$(RLSCALE) fit results/quick --out analysis/quick
