"""Reference values for crates/metrics/src/images.rs (KID and Pearson's chi-square) and
crates/metrics/src/manifold.rs (k-NN precision/recall, Mann-Whitney U).

Run: python3 crates/metrics/tests/images_reference.py  (needs numpy, scipy)

KID: the unbiased MMD^2 with the cubic kernel k(x, y) = (x.y/d + 1)^3 (Binkowski et al. 2018),
by direct double sums over all pairs, on the deterministic fixture
x[i][j] = sin(0.7 i + 1.3 j) + 0.1 j,  y[i][j] = cos(0.4 i - 0.9 j) + 0.001 i.
"""
import numpy as np
from scipy.stats import chisquare, mannwhitneyu


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


# ---- manifold.rs ----------------------------------------------------------------------------
def fixture1(n, d, a, b, c):
    i, j = np.meshgrid(np.arange(n), np.arange(d), indexing="ij")
    return np.sin(a * i + b * j) + c * j


def precision_recall(real, gen, k):
    """Kynkaanniemi et al. 2019 by brute force: k-th nearest neighbour radii within each set."""
    def radii(x):
        dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(dist, np.inf)
        return np.sort(dist, axis=1)[:, k - 1]

    def inside(q, p, r):
        dist = np.sqrt(((q[:, None, :] - p[None, :, :]) ** 2).sum(-1))
        return (dist <= r[None, :]).any(axis=1).mean()

    return inside(gen, real, radii(real)), inside(real, gen, radii(gen))


real = fixture1(300, 4, 0.7, 1.3, 0.1)
gen = fixture1(200, 4, 0.9, 1.3, 0.1)
p, r = precision_recall(real, gen, 3)
print(f"PR_REF_PRECISION = {float(p)!r}")
print(f"PR_REF_RECALL = {float(r)!r}")

i = np.arange(40.0)
x = np.sin(i * 0.73) * 2.0 + 0.1 * i
i = np.arange(55.0)
y = np.cos(i * 0.41) * 2.0 + 0.12 * i
t = mannwhitneyu(x, y, alternative="less", method="asymptotic")
print(f"MWU_SCIPY = ({float(t.statistic)!r}, {float(t.pvalue)!r})")
t = mannwhitneyu(np.round(x), np.round(y), alternative="less", method="asymptotic")
print(f"MWU_SCIPY_TIES = ({float(t.statistic)!r}, {float(t.pvalue)!r})")
