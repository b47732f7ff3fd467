# Every target sets up .venv first (quick when nothing changed).
.PHONY: setup test typecheck demo lint bench bench-gpu

setup:
	@scripts/setup.sh

# The tests that start no ROS node run on two workers (pytest-xdist; tests/conftest.py keeps each file on one worker);
# the ROS tests then run one at a time, since their rate and timeout checks want the machine to themselves. Both
# parts always run; the target fails if either did. `.venv/bin/python -m pytest` runs everything in one process.
test: setup typecheck
	@status=0; \
	.venv/bin/python -m pytest -n 2 -m "not ros" || status=1; \
	.venv/bin/python -m pytest -m ros || status=1; \
	exit $$status

typecheck: setup  # mypy over anytouch_policy/ and anytouch_ros/ (settings: mypy.ini); runs before the tests
	.venv/bin/mypy

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
