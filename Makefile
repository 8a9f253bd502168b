# make run: the whole default DAG (CPU, offline). make test: the test suite. Both create .venv once.
VENV   ?= .venv
PYTHON ?= python3
CORES  ?= all
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.interplab-installed

.PHONY: setup run test mutate report dry-run pull pulled clean

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

# Fetch results from the DVC remote instead of recomputing them, then mark them up to date:
# dvc does not restore modification times, so Snakemake would otherwise see outputs older than
# their inputs. `--touch` stamps every existing output in DAG order without running anything.
# Mutation testing of the core modules (not in CI: about an hour on one core); writes its table
# into benchmarks/RESULTS.md. `$(BIN)/python benchmarks/mutate.py kd` mutates one module.
mutate: setup
	$(BIN)/python benchmarks/mutate.py

pull: setup
	$(BIN)/dvc pull
	$(MAKE) pulled

pulled:
	$(BIN)/snakemake --cores 1 --touch all

clean:
	rm -rf results .snakemake
