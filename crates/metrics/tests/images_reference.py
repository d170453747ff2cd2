"""Reference values for crates/metrics/src/images.rs (KID and Pearson's chi-square).

Run: python3 crates/metrics/tests/images_reference.py  (needs numpy, scipy)

KID: the unbiased MMD^2 with the cubic kernel k(x, y) = (x.y/d + 1)^3 (Binkowski et al. 2018),
by direct double sums over all pairs, on the deterministic fixture
x[i][j] = sin(0.7 i + 1.3 j) + 0.1 j,  y[i][j] = cos(0.4 i - 0.9 j) + 0.001 i.
"""
import numpy as np
from scipy.stats import chisquare


def fixture(n, m, d):
    i, j = np.meshgrid(np.arange(n), np.arange(d), indexing="ij")
    x = np.sin(0.7 * i + 1.3 * j) + 0.1 * j
    i, j = np.meshgrid(np.arange(m), np.arange(d), indexing="ij")
    y = np.cos(0.4 * i - 0.9 * j) + 0.001 * i
    return x, y


def kid(x, y):
    n, d = x.shape
    m = y.shape[0]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.sum() / (n * m))


def kid_loops(x, y):
    """The same by explicit loops (small sets only): checks the matrix form."""
    n, d = x.shape
    m = y.shape[0]
    k = lambda a, b: (a @ b / d + 1) ** 3
    sxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m))
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m)


x, y = fixture(1300, 700, 5)
print(f"KID_NUMPY = {float(kid(x, y))!r}")
x, y = fixture(7, 4, 3)
assert abs(kid(x, y) - kid_loops(x, y)) < 1e-12 * abs(kid(x, y))
print(f"KID_NUMPY_SMALL = {float(kid(x, y))!r}")

counts = np.array([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
freqs = np.array([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949], float)
r = chisquare(counts, counts.sum() * freqs / freqs.sum())
print(f"CHI2_SCIPY = ({float(r.statistic)!r}, {float(r.pvalue)!r})")
