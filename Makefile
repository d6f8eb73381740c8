# The two commands: `make run` (the main job) and `make test`. Everything they need is installed
# on first use: a virtualenv at .venv/ and the control-plane binaries in a versioned cache folder.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# checkov pins many libraries of its own, so it gets a virtualenv apart from the operator's.
TOOLS := .venv-tools
CHECKOV := $(TOOLS)/bin/checkov
CHECKOV_VERSION := 3.3.30

.PHONY: all install cluster-binaries compat-binaries node-binaries kueue chart-tools crds lint unit e2e test compat run bench bench-gangs image bundle cluster-up cluster-down clean

all: install

$(INSTALLED): operator/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "error: Python >= 3.11 is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e 'operator[test]'
	@touch $@

install: $(INSTALLED)

# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and KWOK once per
# pinned version (hack/versions.env) into ~/.cache/aifactory (AIFACTORY_CACHE_DIR overrides).
cluster-binaries:
	@bash hack/build-binaries.sh >/dev/null

# The same for the oldest supported minor (COMPAT_KUBE_VERSION), which make compat runs on.
compat-binaries:
	@bash hack/build-binaries.sh --compat >/dev/null

# A real node's kubelet and kube-proxy (KUBE_VERSION), containerd, ctr and its runc shim
# (CONTAINERD_VERSION) and a pause command, cached the same way (docs/real-node.md).
node-binaries:
	@bash hack/build-node-binaries.sh >/dev/null

# The peer make bench compares with (issue 23): Kueue's manager from its Go module, cached like the
# control plane; its CRDs are read from the same module in the Go module cache.
kueue:
	@. hack/versions.env && bash hack/build-go-tool.sh kueue sigs.k8s.io/kueue/cmd/kueue $$KUEUE_VERSION 4 >/dev/null

# helm and kstatus (built from their Go modules, cached like the control plane) and checkov, for the
# chart and GitOps checks.
$(CHECKOV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

chart-tools: $(CHECKOV)
	@bash hack/build-helm.sh >/dev/null
	@bash hack/build-kstatus.sh >/dev/null

crds: install
	$(PY) -m aifactory_operator.cli crds --out crds --chart charts/aifactory-operator --docs docs/reference \
		--settings-page docs/settings.md

lint: install
	$(VENV)/bin/ruff check --config operator/pyproject.toml operator tests bench hack
	$(VENV)/bin/mypy --config-file operator/pyproject.toml
	$(VENV)/bin/lint-imports --config operator/.importlinter

unit: install
	$(PY) -m pytest tests/unit

e2e: install cluster-binaries node-binaries chart-tools
	$(PY) -m pytest tests/e2e

test: install cluster-binaries node-binaries chart-tools lint
	$(PY) -m pytest tests

# The compatibility suite (tests marked compat: factory life cycle, sovereignty agreement, training
# gangs and restarts, serving, helm install, the CRDs) on the oldest supported minor, on a control
# plane of its own (folder .devcluster-compat, ports from 16540) so it never reuses make test's.
COMPAT_ENV := AIFACTORY_KUBE=compat AIFACTORY_DEVCLUSTER_DIR=$(CURDIR)/.devcluster-compat AIFACTORY_PORT_BASE=16540
compat: install compat-binaries chart-tools
	$(COMPAT_ENV) $(PY) -m pytest -m compat tests/e2e

# The operator's image from the Dockerfile, on a machine with no registry (docs/image.md): the base
# from Debian packages, the wheels, docker build, an OCI layout and a CycloneDX SBOM in build/.
# Installs docker.io, debootstrap and skopeo when missing (root).
image: install
	bash hack/build-image.sh

# The air-gap bundle (docs/air-gap.md): the image as an OCI layout, the packaged chart, the CRDs,
# the SBOM and a manifest of sha256 digests, in build/aifactory-bundle-<version>.tar.
bundle: image
	bash hack/build-bundle.sh

run: install cluster-binaries
	$(PY) -m aifactory_operator.cli demo

cluster-up: install cluster-binaries
	$(PY) -m aifactory_operator.cli cluster up

cluster-down: install
	$(PY) -m aifactory_operator.cli cluster down

clean:
	-$(PY) -m aifactory_operator.cli cluster down
	-$(COMPAT_ENV) $(PY) -m aifactory_operator.cli cluster down
	rm -rf $(VENV) $(TOOLS) .devcluster .devcluster-compat

# Long scale runs, not part of `make test`. A benchmark that fails (training_e2e, admission_e2e and
# factory_scale fail on a gang figure that is not 0 or a wait they gave up, after writing their JSON)
# does not stop the others: each failure is noted in $(BENCH_FAILED), the report is written, and
# then make bench fails naming them.
BENCH_FAILED := bench/failed.txt
bench: install cluster-binaries kueue
	cp BENCHMARKS.json bench/previous.json  # report.py lists the figures that moved against it
	rm -f $(BENCH_FAILED)
	$(PY) bench/admission.py --jobs 10000 --nodes 256 --json bench/admission.json || echo admission >> $(BENCH_FAILED)
	$(PY) bench/training_governance.py --nodes 32 --ticks 600 --json bench/training_governance.json || echo training_governance >> $(BENCH_FAILED)
	$(PY) bench/training_e2e.py --jobs 400 --nodes 128 --json bench/training_e2e_400.json || echo training_e2e_400 >> $(BENCH_FAILED)
	$(PY) bench/training_e2e.py --jobs 400 --nodes 128 --tenants 4 --json bench/training_e2e_400_tenants.json || echo training_e2e_400_tenants >> $(BENCH_FAILED)
	$(PY) bench/training_e2e.py --jobs 1000 --nodes 256 --json bench/training_e2e.json || echo training_e2e >> $(BENCH_FAILED)
	$(PY) bench/admission_e2e.py --jobs 3000 --nodes 256 --window 90 --deep-queue --json bench/admission_e2e.json || echo admission_e2e >> $(BENCH_FAILED)
	$(PY) bench/training_quality.py --jobs 300 --nodes 64 --window 120 --seconds 30 --json bench/training_quality.json || echo training_quality >> $(BENCH_FAILED)
	$(PY) bench/preemption_e2e.py --nodes 32 --urgent 6 --grace 10 --json bench/preemption_e2e.json || echo preemption_e2e >> $(BENCH_FAILED)
	$(PY) bench/serving_e2e.py --endpoints 50 --json bench/serving_e2e.json || echo serving_e2e >> $(BENCH_FAILED)
	$(PY) bench/webhook_latency.py --admissions 1000 --json bench/webhook_latency.json || echo webhook_latency >> $(BENCH_FAILED)
	$(PY) bench/factory_scale.py --nodes 10000 --jobs 10000 --json bench/factory_scale.json || echo factory_scale >> $(BENCH_FAILED)
	$(PY) -m aifactory_operator.cli cluster down  # the chaos suite on a fresh control plane too
	AIFACTORY_CHAOS_FULL=1 AIFACTORY_CHAOS_RESULTS=$(CURDIR)/bench/chaos.json $(PY) -m pytest -m chaos tests/e2e || echo chaos >> $(BENCH_FAILED)
	$(PY) bench/report.py
	@if [ -s $(BENCH_FAILED) ]; then echo "make bench: failed: $$(tr '\n' ' ' < $(BENCH_FAILED))"; exit 1; fi

# Issue 20's acceptance runs: training_e2e at 400 jobs on 128 nodes with seeds 1-5 and at 1,000 on 256
# with seeds 1-2 (a few minutes each on 2 CPUs), then one line per run with the gang audit's
# three figures and the throughput ratio; fails if any run failed. Every run is made, whatever the
# one before did.
GANG_RUNS := $(foreach seed,1 2 3 4 5,400-128-$(seed)) $(foreach seed,1 2,1000-256-$(seed))
bench-gangs: install cluster-binaries
	rm -f bench/gangs-*.json
	@for run in $(GANG_RUNS); do \
		set -- $$(echo $$run | tr - ' '); \
		echo "training_e2e --jobs $$1 --nodes $$2 --seed $$3"; \
		$(PY) bench/training_e2e.py --jobs $$1 --nodes $$2 --seed $$3 --no-kueue --json bench/gangs-$$run.json >/dev/null || true; \
	done
	$(PY) -m aifactory_operator.cli cluster down
	$(PY) bench/gang_runs.py $(GANG_RUNS:%=bench/gangs-%.json)
