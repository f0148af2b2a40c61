#!/bin/bash
cd /tmp/dp/bench
B=/work/main/.venv/bin
rm -rf s1 f2 f1
echo "load before 1x1 f32: $(cat /proc/loadavg)"
OPENBLAS_NUM_THREADS=1 $B/backprop train --data fashion-mnist --epochs 2 --quiet --out s1
echo "load before f64 mpi: $(cat /proc/loadavg)"
OPENBLAS_NUM_THREADS=1 $B/mpiexec -n 2 $B/backprop train --data fashion-mnist --epochs 2 --dtype float64 --quiet --out f2
echo "load before f64 single: $(cat /proc/loadavg)"
OPENBLAS_NUM_THREADS=1 $B/backprop train --data fashion-mnist --epochs 2 --dtype float64 --quiet --out f1
echo "load after: $(cat /proc/loadavg)"
for d in s1 f2 f1; do echo "$d $(cut -d, -f1,6 $d/history.csv | tr '\n' ' ') $(python3 -c "import json;m=json.load(open('$d/metrics.json'));print(m['test_accuracy'], m['test_loss'])")"; done
