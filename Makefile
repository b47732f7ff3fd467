# Every target sets up .venv first (quick when nothing changed).
.PHONY: setup test demo lint bench bench-gpu

setup:
	@scripts/setup.sh

test: setup
	.venv/bin/python -m pytest

demo: setup
	.venv/bin/anytouch demo

lint: setup
	.venv/bin/ruff check .

bench: setup  # JSON on stdout, one document per bench; library benches are `anytouch bench`, bench/ needs ROS
	.venv/bin/anytouch bench encoder
	OMP_NUM_THREADS=1 .venv/bin/anytouch bench sim
	.venv/bin/anytouch bench train
	.venv/bin/python bench/pipeline.py --seconds 60

bench-gpu:  # one JSON of GPU figures (bench/gpu.sh sets up .venv itself; without CUDA it names the parts it skipped)
	bench/gpu.sh
