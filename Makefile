# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo
LESSONS := $(wildcard lessons/[0-9][0-9]_*.py)

.PHONY: demo test bench lint lessons figures student clean venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,onnx]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/yolox-np demo --out $(OUT)

# pytest exits 5 when it collects no test, which fails the target as it should.
test: $(STAMP) lint lessons
	$(PY) -m pytest -q --nbmake --nbmake-timeout=600 tests $(LESSONS:.py=.ipynb)

lint: $(STAMP)
	$(VENV)/bin/ruff check yolox_np tests lessons scripts benchmarks

lessons: $(STAMP)
	$(VENV)/bin/jupytext --quiet --to ipynb $(LESSONS)

figures: $(STAMP)
	$(PY) scripts/make_figures.py

bench: $(STAMP)
	$(VENV)/bin/yolox-np bench all --json bench.json

student: $(STAMP)
	$(PY) -m yolox_np.grading.student --out student

clean:
	rm -rf $(VENV) runs student bench.json lessons/*.ipynb
