"""nnserve's benchmarks: `python -m benchmarks` (`make bench`) prints a table and writes RESULTS.md.

Sections: training (same work as PyTorch, scikit-learn and a NumPy floor), convergence
(time to 100% accuracy with the defaults), scaling (10^3 to 10^6 points, memory), store
(model loads and cache hits) and serving (real gunicorn over loopback HTTP).
"""
