"""Benchmarks of tvbeta: `python -m bench [kernels|grid|mle|bayes|all]`.

Importing this package pins BLAS / OpenMP to one thread (unless already set) before anything
imports numpy: on the shared 2-vCPU machines threaded OpenBLAS makes timings swing 3-5x
(see /work/shared/notes/benchmarking.md).
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
