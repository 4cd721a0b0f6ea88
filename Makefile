# Two entry points; each installs what is missing (uv from the package registry, then the locked stack).
#   make quickstart   train recipes/quickstart.yaml (StarGAN v2 on the built-in shapes set, CPU)
#   make test         run the test suite (what .ci/run calls)

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif
PYTHON ?= python3
# Installed packages get their bytecode at install time: where PYTHONDONTWRITEBYTECODE is set, every process
# would otherwise recompile torch's sources (about 2 s more per CLI start here, and `ganzoo --help` 0.2 s vs 0.5 s).
export UV_COMPILE_BYTECODE := 1

.PHONY: quickstart test quality

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

quickstart: $(UV)
	$(UV) run ganzoo run recipes/quickstart.yaml --out runs/quickstart-$$(date +%Y%m%d-%H%M%S)

test: $(UV)
	$(UV) run --extra dev pytest -q --durations=15

# Colour accuracy and silhouette IoU of the newest quickstart run (see benchmarks/quickstart_quality.py).
quality: $(UV)
	$(UV) run python benchmarks/quickstart_quality.py $$(ls -d runs/quickstart-* | tail -1)
