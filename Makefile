# make run: the whole default DAG (CPU, offline). make test: the test suite. Both create .venv once.
VENV   ?= .venv
PYTHON ?= python3
CORES  ?= all
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.interplab-installed

.PHONY: setup run test mutate report dry-run push pull pulled clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

run: setup
	$(BIN)/snakemake --cores $(CORES) all
	$(BIN)/snakemake --cores $(CORES) all --report results/report.html

report: setup
	$(BIN)/snakemake --cores $(CORES) all --report results/report.html

dry-run: setup
	$(BIN)/snakemake -n all
	$(BIN)/snakemake -n all --configfile configs/paper.yaml

# Two workers, each taking whole test files (module fixtures such as a workflow run are built once):
# rule tests spend much of their time in single-threaded imports, so two workers keep both cores busy.
test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Mutation testing of the core modules (not in CI: about an hour on one core); writes its table
# into benchmarks/RESULTS.md. `$(BIN)/python benchmarks/mutate.py kd` mutates one module (add --merge
# to put its row into that table).
mutate: setup
	$(BIN)/python benchmarks/mutate.py

# DVC (README "Sharing results with DVC"). push: record every stage's outputs in dvc.lock (dvc repro
# runs Snakemake, which finds them up to date) and upload them; commit dvc.lock afterwards.
# pull: fetch what dvc.lock records, then `pulled`: dvc does not restore modification times, so
# Snakemake would see outputs older than their inputs; `--touch` stamps every existing output in
# DAG order without running anything. STAGES=toy limits either to some dvc.yaml stages.
STAGES ?=

push:  # dvc runs each stage's `snakemake` command, so .venv's bin goes first on PATH
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro $(STAGES)
	$(BIN)/dvc push $(STAGES)
	@echo "Pushed. Commit dvc.lock so that other clones of this commit can pull these results."

pull:
	@test -f dvc.lock || { echo "make pull: this commit has no dvc.lock, so nothing records which results to fetch. Run 'make push' where the results were made, commit dvc.lock, and pull that commit." >&2; exit 1; }
	$(BIN)/dvc pull $(STAGES)
	$(MAKE) pulled

pulled:
	$(BIN)/snakemake --cores 1 --touch all

clean:
	rm -rf results .snakemake
