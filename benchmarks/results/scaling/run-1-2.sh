#!/bin/bash
# Fashion-MNIST, default recipe (784-1024-10, batch 128, float32), 2 epochs: 2 ranks x 1 thread vs 1 rank x 2 threads, interleaved.
cd /tmp/dp/bench
B=/work/main/.venv/bin
for i in 1 2; do
  rm -rf r2_$i r1_$i
  echo "load before mpi $i: $(cat /proc/loadavg)"
  OPENBLAS_NUM_THREADS=1 $B/mpiexec -n 2 $B/backprop train --data fashion-mnist --epochs 2 --quiet --out r2_$i
  echo "load before single $i: $(cat /proc/loadavg)"
  OPENBLAS_NUM_THREADS=2 $B/backprop train --data fashion-mnist --epochs 2 --quiet --out r1_$i
  echo "load after $i: $(cat /proc/loadavg)"
  for d in r2_$i r1_$i; do echo "$d $(cut -d, -f1,6 $d/history.csv | tr '\n' ' ') $(python3 -c "import json;m=json.load(open('$d/metrics.json'));print(m['test_accuracy'])")"; done
done
