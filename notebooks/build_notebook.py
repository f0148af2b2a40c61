"""Write and execute ``notebooks/backprop.ipynb``: the notes, page by page, next to the code.

The notebook is kept as Python here so that it can be reviewed as text and regenerated:

    .venv/bin/python notebooks/build_notebook.py            # write and execute (outputs stored)
    .venv/bin/python notebooks/build_notebook.py --no-run   # write the cells only

Every derivation is a markdown cell in the order of the notes (pages 1-7), fixed where the
notes are wrong (see ``docs/errata.md``); every code cell after it imports the function of
`backprop.notes` that implements it, checks its gradients by finite differences and prints
its shapes. `tests/test_notebook.py` executes the stored notebook and checks that its cells
are the ones this script writes.
"""

# ruff: noqa: E501  (the markdown cells hold LaTeX lines that cannot be wrapped)
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "backprop.ipynb"
KERNEL = "python3"
CELL_TIMEOUT_S = 120

CELLS: list[tuple[str, str]] = []


def md(text: str) -> None:
    """Append a markdown cell."""
    CELLS.append(("markdown", text.strip("\n")))


def code(text: str) -> None:
    """Append a code cell."""
    CELLS.append(("code", text.strip("\n")))


def write_it_yourself(what: str, name: str) -> None:
    """The markdown cell before an exercise the student writes (`backprop.exercises`)."""
    md(rf"""
**Write it yourself ({what}).** Replace each `None` in the next cell with your own code
(the forward pass is given), then run the cell after it: `exercises.check` compares each of
your four gradients with finite differences of $J$ and with `backprop.MLP`, on a problem with
$d = 7$, $m = 5$, $c = 3$, $n = 11$, and when one is wrong names the likely mistake
(a transposed product, a bias gradient not summed over the batch, a wrong softmax sign, ...).
As stored, the cell says "not written yet". The answer is not in this notebook, so no
notebook viewer can show it; `print(exercises.answer("{name}"))` prints it from
`backprop/exercises.py` when you ask.
""")


# ============================================================================ intro
md(r"""
# Backpropagation, page by page

This notebook walks through the lecture notes on backpropagation in their order, and puts
next to every equation the function of `backprop.notes` that implements it, a
finite-difference check that the gradient is right, and the shapes it produces.

The notes end with *"check Typo for notebook"*. They contain a handful of mistakes: a
swapped softmax gradient, $1_m$ where $1_n$ is meant, shapes with $m$ and $n$ mixed up. The
equations below are **fixed**; each fix names its entry in [the errata](../docs/errata.md),
and the most important one, the softmax gradient, is shown failing the gradient check as
written.

Then the same two-layer network trains on real data (handwritten digits, diabetes) in
seconds.

| section | notes |
|---|---|
| 1. The multivariate chain rule | page 1 |
| 2. A regression network and each of its gradients | pages 1-2 |
| 3. A classification network and the softmax | pages 3-4 |
| 4. Alg 3 for one example | page 4 |
| 5. A batch, examples in columns | pages 5-6 |
| 6. "In practice": examples in rows | pages 6-7 |
| 7. Any depth: the general recursion and `backprop.MLP` | - |
| 8. Sanity checks: what to run before trusting a gradient | - |
| 9. Training on digits | - |
| 10. Regression on diabetes | - |
| 11. The full run | - |
| 12. Exercises (answers in `backprop.exercises`) | pages 3-7 |

Three cells ask you to write the backward pass yourself (sections 4, 5 and 6: Alg 3 for one
example, the batch in columns, the rows form); the cell after each checks it.
""")

code(r"""
%matplotlib inline
%config InlineBackend.figure_formats = ["png"]
import numpy as np
import matplotlib.pyplot as plt

from backprop import MLP, exercises, notes
from backprop.gradcheck import check_gradients, notes_problem, numerical_gradient, relative_error
from backprop.plots import gradient_norm_figure, matrix_figure, network_figure

np.set_printoptions(precision=4, suppress=True)
plt.rcParams.update({"figure.dpi": 80, "font.size": 10})
KEYS = ("W1", "b1", "W2", "b2")
""")

md(r"""
Two small helpers used throughout. `check` compares a form's gradients with centred finite
differences, $\frac{\partial J}{\partial \theta} \approx \frac{J(\theta + h) - J(\theta - h)}{2h}$,
one relative error per parameter
($\max_i |a_i - b_i| / \max_i (|a_i| + |b_i|)$, see `backprop.gradcheck`); anything below
$10^{-7}$ is right to the precision finite differences allow.
""")

code(r"""
def check(form, args, **kw):
    # Relative error of each analytic gradient of notes.<form> against finite differences.
    fn = getattr(notes, form)
    _, grads = fn(*args, **kw)
    params = dict(zip(KEYS, args[2:]))  # perturbed in place by the check
    return check_gradients(lambda: fn(*args, **kw)[0], params, grads)


def shapes(arrays):
    return {k: v.shape for k, v in arrays.items()}


def errors(errs):
    return "  ".join(f"{k} {e:.1e}" for k, e in errs.items())
""")

# ============================================================================ 1. chain rule
md(r"""
## 1. The multivariate chain rule (page 1)

A loss $J$ depends on the parameters $\theta_1, \dots, \theta_p$ only through $k$
intermediate quantities $g_1, \dots, g_k$:

$$J = J(g_1, \dots, g_k), \qquad g_j = g_j(\theta_1, \dots, \theta_p), \quad j = 1, \dots, k.$$

(The notes write $J = J(\theta_1, \dots, \theta_k)$: $J$ is a function of the $g$'s, not of
the $\theta$'s directly; [errata #3](../docs/errata.md).) Then

$$\boxed{\frac{\partial J}{\partial \theta_i} = \sum_{j=1}^{k} \frac{\partial J}{\partial g_j}\,\frac{\partial g_j}{\partial \theta_i}}$$

i.e. the row vector $\partial J / \partial g$ ($1 \times k$) times the Jacobian
$\partial g / \partial \theta$ ($k \times p$). A tiny example with $p = 2$, $k = 3$:

$$g_1 = \theta_1 \theta_2, \quad g_2 = \sin \theta_1, \quad g_3 = \theta_2^2, \qquad J = g_1 g_2 + g_3.$$
""")

code(r"""
theta = np.array([0.5, -2.0])
t1, t2 = theta
g = np.array([t1 * t2, np.sin(t1), t2**2])

dJ_dg = np.array([g[1], g[0], 1.0])  # dJ/dg_j for J = g1 g2 + g3           1 x k
dg_dtheta = np.array([[t2, t1],  # row j: dg_j/dtheta_i                   k x p
                      [np.cos(t1), 0.0],
                      [0.0, 2 * t2]])
dJ_dtheta = dJ_dg @ dg_dtheta  # sum over j of dJ/dg_j dg_j/dtheta_i       1 x p


def J_of_theta():
    t1, t2 = theta
    return t1 * t2 * np.sin(t1) + t2**2


numeric = numerical_gradient(J_of_theta, theta)
print("chain rule        :", dJ_dtheta)
print("finite differences:", numeric)
print("relative error    :", relative_error(dJ_dtheta, numeric))
""")

# ============================================================================ 2. regression
md(r"""
## 2. A regression network and each of its gradients (pages 1-2)

One example $x \in \mathbb{R}^d$, one hidden layer of $m$ ReLU units, one output:

$$
\begin{aligned}
z &= W^{(1)} x + b^{(1)} && m \times 1 = (m \times d)(d \times 1) + m \times 1 \\
a &= \operatorname{ReLU}(z) && m \times 1 \\
o &= W^{(2)} a + b^{(2)} = \sum_{i=1}^{m} W^{(2)}_i a_i + b^{(2)} && 1 \times 1 = (1 \times m)(m \times 1) + 1 \times 1 \\
J &= \tfrac12 (y - o)^2
\end{aligned}
$$

(The notes write $W_i^2$ on page 2 and the shape line of $z$ as "$m \times 1 \;\, m \times 1
\times d \times 1$": [errata #15, #17](../docs/errata.md).)

**Output layer.** Since $\partial J / \partial o = o - y$ and $\partial o / \partial W^{(2)}_i = a_i$,

$$\frac{\partial J}{\partial W^{(2)}} = (o - y)\, a^T \quad (1 \times m), \qquad
\frac{\partial J}{\partial b^{(2)}} = o - y \in \mathbb{R}.$$

**Back into the hidden layer.** $\partial o / \partial a_i = W^{(2)}_i$, so

$$\frac{\partial J}{\partial a} = W^{(2)T} (o - y) \quad (m \times 1), \qquad
\frac{\partial J}{\partial z} = \frac{\partial J}{\partial a} \odot \operatorname{ReLU}'(z), \quad
\operatorname{ReLU}'(z_i) = \mathbb{1}\{z_i > 0\}.$$

**First layer.** $z_i = \sum_k W^{(1)}_{ik} x_k + b^{(1)}_i$, so
$\partial J / \partial W^{(1)}_{ij} = \frac{\partial J}{\partial z_i} x_j$ and
$\partial J / \partial b^{(1)}_i = \frac{\partial J}{\partial z_i}$:

$$\frac{\partial J}{\partial W^{(1)}} = \frac{\partial J}{\partial z}\, x^T \quad (m \times d) = (m \times 1)(1 \times d), \qquad
\frac{\partial J}{\partial b^{(1)}} = \frac{\partial J}{\partial z} \quad (m \times 1).$$

`notes.regression_example(x, y, W1, b1, W2, b2)` is these lines, one per equation. First on
an example small enough to work on paper ($d = m = 2$; the same numbers are checked in
`tests/test_notes.py`):
""")

code(r"""
# The hand-worked network (the names end in _hand: later sections use x, W1, ... for others)
x_hand = np.array([[1.0], [2.0]])  # d x 1
y_hand = 3.0
W1_hand = np.array([[1.0, -1.0], [0.5, 1.0]])  # m x d
b1_hand = np.array([[0.0], [-1.0]])  # m x 1
W2_hand = np.array([[2.0, -1.0]])  # 1 x m
b2_hand = np.array([[0.5]])  # 1 x 1

z = W1_hand @ x_hand + b1_hand
a = notes.relu(z)
o = W2_hand @ a + b2_hand
print("z =", z.ravel(), "  a =", a.ravel(), "  o =", o.ravel())

J, grads = notes.regression_example(x_hand, y_hand, W1_hand, b1_hand, W2_hand, b2_hand)
print("J = 1/2 (y - o)^2 =", J)
for k in KEYS:
    print(f"dJ/d{k} =", (grads[k] + 0.0).tolist())  # + 0.0 prints -0.0 as 0.0
""")

md(r"""
By hand: $z = (1 - 2,\; 0.5 + 2 - 1) = (-1, 1.5)$, $a = (0, 1.5)$, $o = -1.5 + 0.5 = -1$,
$J = \frac12 \cdot 4^2 = 8$, $o - y = -4$;
$\partial J / \partial W^{(2)} = -4\,(0, 1.5) = (0, -6)$,
$\partial J / \partial a = (2, -1)^T \cdot (-4) = (-8, 4)$, and the dead first unit
($z_1 < 0$) blocks its gradient: $\partial J / \partial z = (0, 4)$,
$\partial J / \partial W^{(1)} = (0, 4)^T (1, 2) = \begin{pmatrix} 0 & 0 \\ 4 & 8 \end{pmatrix}$.

Now with random parameters and **distinct** sizes $d = 7$, $m = 5$, $n = 11$ (so a mix-up of
any two of them would break a shape), checked by finite differences:
""")

code(r"""
D, M, C, N = 7, 5, 3, 11
reg = notes_problem(classification=False, d=D, m=M, c=C, n=N, seed=0)
args = reg.args("regression_example")  # x (d x 1), y, W1 (m x d), b1, W2 (1 x m), b2
print("x:", args[0].shape, " W1:", args[2].shape, " W2:", args[4].shape)
_, grads = notes.regression_example(*args)
print("gradient shapes:", shapes(grads))
print("relative errors:", errors(check("regression_example", args)))
""")

# ============================================================================ 3. softmax
md(r"""
## 3. A classification network and the softmax (pages 3-4)

Same hidden layer; now $c$ scores and a softmax over them:

$$
\begin{aligned}
s &= W^{(2)} a + b^{(2)} && c \times 1 = (c \times m)(m \times 1) + c \times 1 \\
p_k &= \frac{e^{s_k}}{\sum_{j=1}^{c} e^{s_j}} \\
J &= -\log p_y = -s_y + \log \sum_{j=1}^{c} e^{s_j} = -\sum_{k=1}^{c} \mathbb{1}\{y = k\} \log p_k
\end{aligned}
$$

(The notes write $-\log p_k$: the loss reads the probability of the true class $y$;
[errata #2](../docs/errata.md).) Differentiating the middle form,

$$\boxed{\frac{\partial J}{\partial s_k} = p_k - \mathbb{1}\{k = y\}}
\qquad\text{i.e.}\qquad \frac{\partial J}{\partial s} = p - e_y.$$

**The typo.** The notes write $\frac{\partial J}{\partial s_k} = p_k$ if $k = y$ and
$p_k - 1$ if $k \ne y$: the two cases are swapped ([errata #1](../docs/errata.md)). It can't
be right: the true class's score must be pushed *up* (negative gradient, $p_y - 1 < 0$),
and the gradient of $J$ must sum to zero over $k$ (adding a constant to every score leaves
$p$ unchanged); the as-written version sums to $p_y + \sum_{k \ne y} (p_k - 1) = 1 - (c - 1) = 2 - c$.
For $c = 2$ that is 0 too, so the sum test cannot see the typo there; but with two classes
the right gradient is $(p_y - 1, p_{\bar y}) = p_{\bar y}\,(-1, 1)$ and the as-written one is
$(p_y, p_{\bar y} - 1) = p_y\,(1, -1)$ (writing $\bar y$ for the other class): it is
$-\frac{p_y}{p_{\bar y}}$ times the right one, pointing exactly **uphill**. A step against it
raises the loss.

The rest is as for regression, with $\partial J / \partial s$ in place of $o - y$
(page 4):

$$\frac{\partial J}{\partial W^{(2)}} = \frac{\partial J}{\partial s}\, a^T \quad (c \times m), \qquad
\frac{\partial J}{\partial b^{(2)}} = \frac{\partial J}{\partial s}, \qquad
\frac{\partial J}{\partial a_i} = \sum_{e=1}^{c} \frac{\partial J}{\partial s_e} W^{(2)}_{e,i}
\;\Rightarrow\; \frac{\partial J}{\partial a} = W^{(2)T} \frac{\partial J}{\partial s} \quad (m \times c)(c \times 1).$$

($\partial J / \partial a_i$ uses the $i$-th **column** of $W^{(2)}$; the notes' "$1 \times c$"
under $(w_i^{(2)})^T$ says just that, so [errata #16](../docs/errata.md) is not an error.)

On paper: keep the hidden layer of section 2 ($a = (0, 1.5)$), take $c = 2$ and
$W^{(2)} = \begin{pmatrix} 0 & 0 \\ 0 & \frac23 \ln 3 \end{pmatrix}$, $b^{(2)} = 0$, so
$s = (0, \ln 3)$, $p = (\frac14, \frac34)$ and, for $y = 0$, $J = \ln 4$ and
$\partial J / \partial s = (-\frac34, \frac34)$:
""")

code(r"""
W2_soft = np.array([[0.0, 0.0], [0.0, 2 / 3 * np.log(3)]])  # c x m
b2_soft = np.zeros((2, 1))  # c x 1
s = W2_soft @ notes.relu(W1_hand @ x_hand + b1_hand) + b2_soft
p = np.exp(s) / np.exp(s).sum()
J, _ = notes.classification_example(x_hand, 0, W1_hand, b1_hand, W2_soft, b2_soft)
print("s =", s.ravel(), "  p =", p.ravel(), "  J =", J, "  ln 4 =", np.log(4))
print("dJ/ds fixed     :", notes.dJ_ds(p, 0).ravel())
print("dJ/ds as written:", notes.dJ_ds_as_written(p, 0).ravel())
print("as written / fixed:", (notes.dJ_ds_as_written(p, 0) / notes.dJ_ds(p, 0)).ravel(),
      " -p_y / p_other:", -p[0, 0] / p[1, 0])
""")

md(r"""
The gradient check settles it. `notes.classification_example` takes the score gradient as an
argument; with the notes' version every gradient downstream of $\partial J / \partial s$ is
wrong, with the fixed one all four agree with finite differences ($d = 7$, $m = 5$, $c = 3$):
""")

code(r"""
cls = notes_problem(classification=True, d=D, m=M, c=C, n=N, seed=0)
one = cls.args("classification_example")  # x (d x 1), y, W1 (m x d), b1, W2 (c x m), b2
fixed = check("classification_example", one, score_grad=notes.dJ_ds)
as_written = check("classification_example", one, score_grad=notes.dJ_ds_as_written)
print("param  fixed dJ/ds   as written")
for k in KEYS:
    print(f"{k:5}  {fixed[k]:11.1e}   {as_written[k]:10.1e}")
print("fixed passes:", max(fixed.values()) < 1e-7, "| as written passes:",
      max(as_written.values()) < 1e-7)
""")

md(r"""
With $c = 3$ classes the sum test fails too: summed over $k$, the fixed $\partial J / \partial s$
is 0 and the as-written one is $2 - c = -1$.
""")

code(r"""
x, y, W1, b1, W2, b2 = cls.args("classification_example")
s = W2 @ notes.relu(W1 @ x + b1) + b2
p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
print("y =", y, " p =", p.ravel())
print("fixed     :", notes.dJ_ds(p, y).ravel(), " sum:", round(notes.dJ_ds(p, y).sum(), 12) + 0.0)
print("as written:", notes.dJ_ds_as_written(p, y).ravel(), " sum:",
      round(notes.dJ_ds_as_written(p, y).sum(), 12))
""")

code(r"""
_, grads = notes.classification_example(*one)
print("x:", one[0].shape, " W1:", one[2].shape, " W2:", one[4].shape)
print("gradient shapes:", shapes(grads))
""")

# ============================================================================ 4. alg 3
md(r"""
## 4. Alg 3: backpropagation for one example (page 4)

The notes name the two "errors" that keep coming back:

1. Forward: compute $z \in \mathbb{R}^m$, $a \in \mathbb{R}^m$, $s \in \mathbb{R}^c$.
2. Backward:

$$
\delta^{(2)} = \frac{\partial J}{\partial s} \in \mathbb{R}^{c}, \qquad
\delta^{(1)} = \underbrace{\left(W^{(2)T} \delta^{(2)}\right)}_{\partial J / \partial a} \odot \operatorname{ReLU}'(z) \in \mathbb{R}^{m},
$$

$$
\frac{\partial J}{\partial W^{(2)}} = \delta^{(2)} a^T, \quad
\frac{\partial J}{\partial b^{(2)}} = \delta^{(2)}, \quad
\frac{\partial J}{\partial W^{(1)}} = \delta^{(1)} x^T, \quad
\frac{\partial J}{\partial b^{(1)}} = \delta^{(1)}.
$$

`notes.classification_example` runs these four lines inside; it passes the checker the
exercise below uses (finite differences and the engine, per parameter):
""")

code(r"""
exercises.check("example", lambda *args: notes.classification_example(*args)[1])
""")

write_it_yourself("Alg 3, one example", "example")
code(r"""
def my_example(x, y, W1, b1, W2, b2):
    # Forward (page 3), given:
    z = W1 @ x + b1  # m x 1
    a = notes.relu(z)  # m x 1
    s = W2 @ a + b2  # c x 1
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()  # c x 1
    # Backward (Alg 3, page 4), yours: y is the class, an int in 0 .. c-1.
    delta2 = None  # dJ/ds                                     c x 1
    delta1 = None  # dJ/dz                                     m x 1
    return {"W1": None, "b1": None, "W2": None, "b2": None}
""")

code(r"""
exercises.check("example", my_example)
""")

# ============================================================================ 5. batch
md(r"""
## 5. A batch, examples in columns (pages 5-6)

Stack the $n$ examples as the columns of $X \in \mathbb{R}^{d \times n}$. Each column of $Z$
is $W^{(1)} x^{(i)} + b^{(1)}$, so the bias is repeated $n$ times by an outer product with
the ones vector $1_n$:

$$
\begin{aligned}
Z &= W^{(1)} X + b^{(1)} 1_n^T && m \times n = (m \times d)(d \times n) + (m \times 1)(1 \times n) \\
A &= \operatorname{ReLU}(Z) && m \times n \\
S &= W^{(2)} A + b^{(2)} 1_n^T && c \times n = (c \times m)(m \times n) + (c \times 1)(1 \times n) \\
J &= -\frac1n \sum_{i=1}^{n} \log p^{(i)}_{y^{(i)}}
\end{aligned}
$$

**Fixed here** ([errata #4-#10, #18, #21](../docs/errata.md)): the notes write $1_m$ and $S \in
\mathbb{R}^{c \times m}$, reusing $m$ (the hidden width) for the batch size; the ones vector
has one entry per *example*. With the mean in $J$, column $i$ of $\partial J / \partial S$ is
$(p^{(i)} - e_{y^{(i)}}) / n$:

$$\frac{\partial J}{\partial S_{ki}} = \frac{p^{(i)}_k - \mathbb{1}\{k = y^{(i)}\}}{n} \qquad (c \times n).$$

Backward, every shape written out (the notes' shape lines on page 6 mix $m$ and $n$):

$$
\begin{aligned}
\delta^{(2)} &= \frac{\partial J}{\partial S} && c \times n \\
\frac{\partial J}{\partial A} &= W^{(2)T} \delta^{(2)} && m \times n = (m \times c)(c \times n) \\
\delta^{(1)} &= \frac{\partial J}{\partial Z} = \frac{\partial J}{\partial A} \odot \operatorname{ReLU}'(Z) && m \times n \\
\frac{\partial J}{\partial W^{(2)}} &= \delta^{(2)} A^T && c \times m = (c \times n)(n \times m) \\
\frac{\partial J}{\partial b^{(2)}} &= \delta^{(2)} 1_n && c \times 1 = (c \times n)(n \times 1) \\
\frac{\partial J}{\partial W^{(1)}} &= \delta^{(1)} X^T && m \times d = (m \times n)(n \times d) \\
\frac{\partial J}{\partial b^{(1)}} &= \delta^{(1)} 1_n && m \times 1 = (m \times n)(n \times 1)
\end{aligned}
$$

(The batch Alg 3 of page 6 copies $\partial J / \partial b = \delta$ from the one-example
version; for a batch the biases sum the deltas over the examples: $\delta 1_n$,
[errata #9](../docs/errata.md).) `notes.classification_batch`:
""")

code(r"""
batch = cls.args("classification_batch")  # X (d x n), y (n,), W1, b1, W2, b2
J_batch, grads_batch = notes.classification_batch(*batch)
print("X:", batch[0].shape, " y:", batch[1].shape, " J =", round(J_batch, 4))
print("gradient shapes:", shapes(grads_batch))
print("relative errors:", errors(check("classification_batch", batch)))
print("regression_batch:", errors(check("regression_batch", reg.args("regression_batch"))))
""")

md(r"""
Because $J$ is the **mean** of the per-example losses, the batch gradient is the mean of the
per-example gradients of Alg 3 (page 4). Running Alg 3 on each of the $n = 11$ columns and
averaging:
""")

code(r"""
per_example = [notes.classification_example(*cls.args("classification_example", i))[1]
               for i in range(N)]
averaged = {k: np.mean([g[k] for g in per_example], axis=0) for k in KEYS}
print("mean of per-example vs batch:",
      errors({k: relative_error(averaged[k], grads_batch[k]) for k in KEYS}))
""")

md(r"""
**Two rules behind the batch errata** (the mistakes of pages 5-7 are all broken by them):

1. *A broadcast in the forward pass is a sum in the backward pass.* The forward pass copies
   $b^{(1)}$ into every column, $b^{(1)} 1_n^T$ ($1_n^T$ on the right, forward); each copy
   passes its share of the gradient back, and the shares add up: $\delta^{(1)} 1_n$
   ($1_n$ on the right, backward). That is why page 6's $\partial J / \partial b = \delta$,
   copied from one example, is wrong for a batch (errata #9), and why the ones vector has
   $n$ entries, one per example (errata #4, #8).
2. *The order of a product follows from the shapes.* $\partial J / \partial W^{(1)}$ must be
   $m \times d$ like $W^{(1)}$; $\delta^{(1)}$ is $m \times n$ and $X$ is $d \times n$, so the only
   product of the two that is $m \times d$ is $\delta^{(1)} X^T$, $(m \times n)(n \times d)$: the
   sum over the examples happens in the inner dimension $n$. With $d$, $m$, $c$, $n$ all
   different, a transposed or mis-ordered product cannot even be computed.
""")

write_it_yourself("the batch in columns", "columns")
code(r"""
def my_columns(X, y, W1, b1, W2, b2):
    # Forward (page 5), given: X is d x n, y holds the n classes.
    n = X.shape[1]
    Z = W1 @ X + b1  # m x n (NumPy broadcasts b1: the b(1) 1_n^T of page 5)
    A = notes.relu(Z)  # m x n
    S = W2 @ A + b2  # c x n
    P = np.exp(S - S.max(axis=0)) / np.exp(S - S.max(axis=0)).sum(axis=0)  # c x n
    # Backward (page 6, fixed), yours:
    delta2 = None  # dJ/dS                                     c x n
    delta1 = None  # dJ/dZ                                     m x n
    return {"W1": None, "b1": None, "W2": None, "b2": None}
""")

code(r"""
exercises.check("columns", my_columns)
""")

md(r"""
The whole batch computation as a diagram (`backprop.plots.network_figure`): each node with
its shape, the forward operation above each arrow and the delta that flows back below it.
""")

code(r"""
display(network_figure("columns"))
""")

md(r"""
**One backward step by hand, $n = 2$.** The hand-worked network of section 3 ($c = 2$) on a
batch of two examples: $x^{(1)} = (1, 2)$ of class 0 and $x^{(2)} = (2, -1)$ of class 1, so
$z^{(2)} = (2 + 1,\; 1 - 1 - 1) = (3, -1)$, $a^{(2)} = (3, 0)$, $s^{(2)} = (0, 0)$,
$p^{(2)} = (\frac12, \frac12)$. Every $z$ is at least 1 away from ReLU's kink at 0, so the
finite-difference check of this batch is valid (the kink is visited on purpose below).
Column $i$ of $\delta^{(2)} = (P - Y)/n$ is example $i$'s $p^{(i)} - e_{y^{(i)}}$ divided by
$n$, and multiplying by $1_n$ adds the columns: the bias gradient sums over the examples.
""")

code(r"""
X2 = np.array([[1.0, 2.0], [2.0, -1.0]])  # d x n: the examples are the columns
y2 = np.array([0, 1])
Z2 = W1_hand @ X2 + b1_hand @ np.ones((1, 2))  # m x n
S2 = W2_soft @ notes.relu(Z2) + b2_soft @ np.ones((1, 2))  # c x n
P2 = np.exp(S2) / np.exp(S2).sum(axis=0)  # softmax down each column
Y2 = np.eye(2)[:, y2]  # one-hot columns
delta2_n2 = (P2 - Y2) / 2
for i in range(2):
    print(f"column {i}: p = {P2[:, i].round(4)}, y = {y2[i]}, (p - e_y)/n = {delta2_n2[:, i].round(4)}")
print("dJ/db2 = delta2 1_n =", (delta2_n2 @ np.ones((2, 1))).ravel().round(4))
_, grads_n2 = notes.classification_batch(X2, y2, W1_hand, b1_hand, W2_soft, b2_soft)
print("notes.classification_batch:", grads_n2["b2"].ravel().round(4))
print("Z =", Z2.tolist(), " smallest |z|:", np.abs(Z2).min())
print("hand batch check:", errors(check("classification_batch", (X2, y2, W1_hand.copy(),
                                       b1_hand.copy(), W2_soft.copy(), b2_soft.copy()))))
""")

md(r"""
**A sanity check: finite differences at the kink.** Move $x^{(2)}$ to $(2, 0)$: now
$z^{(2)}_2 = 0.5 \cdot 2 + 0 - 1 = 0$, exactly on ReLU's kink. ReLU has no derivative there;
the code uses $\operatorname{ReLU}'(0) = \mathbb{1}\{0 > 0\} = 0$, while the centred
difference $\frac{J(\theta + h) - J(\theta - h)}{2h}$ straddles the kink and measures the
average of the slopes on its two sides. So the check **is expected to disagree** for the
parameters upstream of that unit ($W^{(1)}$, $b^{(1)}$) and to agree for $W^{(2)}$, $b^{(2)}$,
which do not pass through the kink. Correct code, failing check: before trusting a failed
check, look for a pre-activation within $h$ of 0.
""")

code(r"""
X_kink = np.array([[1.0, 2.0], [2.0, 0.0]])  # x(2) = (2, 0): z(2)_2 = 0
print("Z at the kink =", (W1_hand @ X_kink + b1_hand).tolist())
print("check at the kink:", errors(check("classification_batch", (X_kink, y2, W1_hand.copy(),
                                        b1_hand.copy(), W2_soft.copy(), b2_soft.copy()))))
""")

md(r"""
The two matrices of the backward pass for the $n = 11$ batch above, as heatmaps: $P - Y$
(each column sums to 0; the true class is the one blue cell) and the mask
$\operatorname{ReLU}'(Z)$ that lets $\delta^{(1)}$ through (a unit whose row is white
for every example is dead on this batch).
""")

code(r"""
Xb, yb, W1b, b1b, W2b, b2b = cls.args("classification_batch")
Zb = W1b @ Xb + b1b
Sb = W2b @ notes.relu(Zb) + b2b
Pb = np.exp(Sb - Sb.max(axis=0)) / np.exp(Sb - Sb.max(axis=0)).sum(axis=0)
Yb = np.eye(C)[:, yb]
display(matrix_figure(Pb - Yb, "P - Y (c x n)", xlabel="example i", ylabel="class k"))
display(matrix_figure(notes.relu_prime(Zb), "ReLU'(Z) (m x n)", xlabel="example i",
                      ylabel="hidden unit", diverging=False))
""")

md(r"""
**The errata, failing on screen** ([#4](../docs/errata.md), [#9](../docs/errata.md)): page 5's
$1_m$ cannot be added when $m \ne n$, and page 6's "$\partial J/\partial b^{(2)} = \delta^{(2)}$"
has the shape of $S$, not of $b^{(2)}$. (Page 3's $\partial J/\partial s$ failed in section 3.)
""")

code(r"""
try:
    W1b @ Xb + b1b @ np.ones((1, M))  # as written: 1_m^T
except ValueError as exc:
    print("Z = W1 X + b1 1_m^T  ->  refused by NumPy:", exc)
print("Z = W1 X + b1 1_n^T  ->", (W1b @ Xb + b1b @ np.ones((1, N))).shape)
delta2_b = (Pb - Yb) / N
print("dJ/db2 = delta2      ->", delta2_b.shape, "but b2 is", b2b.shape)
print("dJ/db2 = delta2 1_n  ->", (delta2_b @ np.ones((N, 1))).shape)
""")

# ============================================================================ 6. rows
md(r"""
## 6. "In practice": examples in rows (pages 6-7)

Data sets store one example per **row**, $X \in \mathbb{R}^{n \times d}$, and code stores
$W^{[1]} \in \mathbb{R}^{d \times m}$, $W^{[2]} \in \mathbb{R}^{m \times c}$ and the biases
as rows: everything of section 5, transposed.

$$
\begin{aligned}
Z &= X W^{[1]} + 1_n b^{[1]} && n \times m = (n \times d)(d \times m) + (n \times 1)(1 \times m) \\
S &= A W^{[2]} + 1_n b^{[2]} && n \times c = (n \times m)(m \times c) + (n \times 1)(1 \times c) \\
\frac{\partial J}{\partial A} &= \frac{\partial J}{\partial S} W^{[2]T} && n \times m = (n \times c)(c \times m) \\
\frac{\partial J}{\partial Z} &= \frac{\partial J}{\partial A} \odot \operatorname{ReLU}'(Z) && n \times m \\
\frac{\partial J}{\partial W^{[2]}} &= A^T \frac{\partial J}{\partial S} && m \times c = (m \times n)(n \times c) \\
\frac{\partial J}{\partial b^{[2]}} &= 1_n^T \frac{\partial J}{\partial S} && 1 \times c = (1 \times n)(n \times c) \\
\frac{\partial J}{\partial W^{[1]}} &= X^T \frac{\partial J}{\partial Z} && d \times m = (d \times n)(n \times m) \\
\frac{\partial J}{\partial b^{[1]}} &= 1_n^T \frac{\partial J}{\partial Z} && 1 \times m = (1 \times n)(n \times m)
\end{aligned}
$$

(Page 6's "in practice" matrices say $X$ is $m \times d$; page 7 writes $1_m$ and a column $1_m$ for the bias gradients, and
"REW$'$" for ReLU$'$: [errata #11-#14](../docs/errata.md).) `notes.classification_batch_rows`
gives the transposes of the column form's gradients:
""")

code(r"""
rows = cls.args("classification_batch_rows")  # X (n x d), y, W1 (d x m), b1 (1 x m), ...
J_rows, grads_rows = notes.classification_batch_rows(*rows)
print("X:", rows[0].shape, " gradient shapes:", shapes(grads_rows))
print("relative errors:", errors(check("classification_batch_rows", rows)))
print("same J as columns:", np.isclose(J_rows, J_batch),
      "| dJ/dW1 rows == (dJ/dW1 columns)^T:", np.allclose(grads_rows["W1"], grads_batch["W1"].T))
""")

write_it_yourself("the rows form", "rows")
code(r"""
def my_rows(X, y, W1, b1, W2, b2):
    # Forward (page 7), given: X is n x d, W1 is d x m, b1 is 1 x m, W2 is m x c, b2 is 1 x c.
    n = X.shape[0]
    Z = X @ W1 + b1  # n x m (NumPy broadcasts b1: the 1_n b[1] of page 7)
    A = notes.relu(Z)  # n x m
    S = A @ W2 + b2  # n x c
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)  # n x c
    # Backward (page 7, fixed), yours:
    delta2 = None  # dJ/dS                                     n x c
    delta1 = None  # dJ/dZ                                     n x m
    return {"W1": None, "b1": None, "W2": None, "b2": None}
""")

code(r"""
exercises.check("rows", my_rows)
""")

code(r"""
display(network_figure("rows"))
""")

md(r"""
Every matrix's shape, printed from the code for the three forms with $d = 7$, $m = 5$,
$c = 3$, $n = 11$ (the inputs, the parameters and the gradients each form returns):
""")

code(r"""
print(f"{'form':28} {'X':9} {'W1':8} {'b1':8} {'W2':8} {'b2':8} {'dJ/dW1':8} {'dJ/db1':8}")
for form in ("classification_example", "classification_batch", "classification_batch_rows"):
    form_args = cls.args(form)
    _, g = getattr(notes, form)(*form_args)
    shown = [form_args[0].shape, *(a.shape for a in form_args[2:]), g["W1"].shape, g["b1"].shape]
    print(f"{form:28} " + " ".join(f"{str(sh):8}" for sh in shown))
""")

# ============================================================================ 7. depth L
md(r"""
## 7. Any depth: the general recursion and `backprop.MLP`

Nothing in Alg 3 depends on there being two layers. With $A^{[0]} = X$ and $L$ weight
layers (rows, as on page 7):

$$
Z^{[l]} = A^{[l-1]} W^{[l]} + 1_n b^{[l]}, \qquad A^{[l]} = f(Z^{[l]}), \qquad S = Z^{[L]},
$$

$$
\delta^{[L]} = \frac{\partial J}{\partial S}, \qquad
\boxed{\delta^{[l]} = \left(\delta^{[l+1]} W^{[l+1]T}\right) \odot f'(Z^{[l]})}, \qquad
\frac{\partial J}{\partial W^{[l]}} = A^{[l-1]T} \delta^{[l]}, \qquad
\frac{\partial J}{\partial b^{[l]}} = 1_n^T \delta^{[l]}.
$$

`backprop.MLP` is this loop (in `MLP.loss_and_grads`), written for speed. With the
notes' sizes and the same parameters, it agrees with `notes.classification_batch_rows`:
""")

code(r"""
net = MLP([D, M, C], dtype=np.float64)
net.params = dict(cls.params)  # the same W1 (d x m), b1, W2 (m x c), b2
J_net, grads_net = net.loss_and_grads(cls.X, cls.y)
print("J:", J_net, "vs", J_rows)
as_engine = {k: grads_rows[k].reshape(grads_net[k].shape) for k in KEYS}  # b: (1, m) -> (m,)
print("MLP vs notes:", errors({k: relative_error(grads_net[k], as_engine[k]) for k in KEYS}))
""")

md(r"""
And at depth $L = 4$ (three hidden layers of widths 5, 6, 4), the recursion still passes the
finite-difference check for every parameter:
""")

code(r"""
deep = MLP([D, 5, 6, 4, C], activation="tanh", dtype=np.float64, seed=1)
_, grads_deep = deep.loss_and_grads(cls.X, cls.y)
print("parameter shapes:", shapes(deep.params))
deep_errors = check_gradients(lambda: deep.compute_loss(cls.X, cls.y), deep.params, grads_deep)
print("max relative error:", f"{max(deep_errors.values()):.1e}")
""")

md(r"""
`backprop gradcheck` on the command line prints the whole table: the notes' six forms, the
as-written softmax gradient (failing), and the engine at depths 1-4 with every activation
and both losses.
""")

md(r"""
## 8. Sanity checks: what to run before trusting a gradient

Four checks that catch most broken backward passes before a long run, each on digits
($d = 64$, $c = 10$) or on the notes' small problem.

**1. The initial loss is about $\log c$.** With small random weights every score is near 0,
so $p_k \approx 1/c$ for every class and $J = -\log p_y \approx \log c$. A first loss far from it
means the loss or the initialisation is wrong.
""")

code(r"""
from backprop.data import load_dataset

digits = load_dataset("digits")
X_small, y_small = digits.X_train[:200] / 16.0, digits.y_train[:200]
start = MLP([64, 64, 10], seed=0, dtype=np.float64)
print(f"initial loss: {start.compute_loss(X_small, y_small):.3f}   log c = log 10 = {np.log(10):.3f}")
""")

md(r"""
**2. Overfit a tiny batch.** Twenty examples and $P = 64 \cdot 64 + 64 + 64 \cdot 10 + 10 = 4810$ parameters: plain gradient descent
must drive the loss to nearly 0 and the training accuracy to 1. If it cannot, no amount of
data will help: the gradient, the update or the data pipeline is broken.
""")

code(r"""
tiny = MLP([64, 64, 10], seed=0, dtype=np.float64)
X_tiny, y_tiny = X_small[:20], y_small[:20]
for step in range(300):
    _, g_tiny = tiny.loss_and_grads(X_tiny, y_tiny)
    for k, g in g_tiny.items():
        tiny.params[k] -= 0.5 * g
tiny_accuracy = np.mean(tiny.predict(X_tiny) == y_tiny)
print(f"tiny batch: loss after 300 steps {tiny.compute_loss(X_tiny, y_tiny):.4f}, "
      f"training accuracy {tiny_accuracy:.2f}")
""")

md(r"""
**3. Finite differences away from the kinks.** A centred difference straddling a ReLU kink
disagrees with correct code (section 5 shows it on the hand batch): check with inputs whose
pre-activations are not within $h$ of 0, as `backprop.gradcheck` does.

**4. Why backprop at all: the cost of finite differences.** Checking every one of the
$P$ parameters by centred differences takes $2P$ evaluations of the loss; one backward pass
gives all $P$ derivatives for about the cost of two or three. Timed on this network
($P = 4810$, so $2P = 9620$ loss evaluations), in one process, as a ratio:
""")

code(r"""
import time

timed = MLP([64, 64, 10], seed=0, dtype=np.float64)
X_t, y_t = X_small[:64], y_small[:64]
P_count = sum(v.size for v in timed.params.values())
t0 = time.perf_counter()
for _ in range(20):
    _, g_back = timed.loss_and_grads(X_t, y_t)
backward_s = (time.perf_counter() - t0) / 20
t0 = time.perf_counter()
g_fd = {k: numerical_gradient(lambda: timed.compute_loss(X_t, y_t), v) for k, v in timed.params.items()}
fd_s = time.perf_counter() - t0
print(f"P = {P_count} parameters, {2 * P_count} loss evaluations")
print("finite differences agree:", max(relative_error(g_back[k], g_fd[k]) for k in g_fd) < 1e-6)
print(f"finite differences / one backward pass: {fd_s / backward_s:.0f} x")
""")

md(r"""
**5. Train with the gradient as written.** Erratum #1 is not a cosmetic typo: gradient
descent with page 3's swapped cases (section 3) climbs. Below, the notes' two-layer network
trained on 30 examples with the fixed $\partial J / \partial s = p - e_y$ and with the one as
written, for $c = 2$ (where the as-written gradient is $-\frac{p_y}{p_{\bar y}}$ times the right
one, exactly uphill) and $c = 3$. What to look for: the fixed curve falls, the as-written
curve rises (for $c = 3$ without bound: the log axis keeps both in view).
""")

code(r"""
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
for ax, c_train in zip(axes, (2, 3)):
    for score_grad, label in ((notes.dJ_ds, "fixed: p - e_y"), (notes.dJ_ds_as_written, "as written")):
        prob = notes_problem(classification=True, d=4, m=6, c=c_train, n=30, seed=1)
        params = [a.copy() for a in prob.args("classification_batch")[2:]]
        curve = []
        for step in range(60):
            curve.append(notes.classification_batch(prob.X.T, prob.y, *params)[0])
            per = [notes.classification_example(*prob.args("classification_example", i)[:2], *params,
                                                score_grad=score_grad)[1] for i in range(30)]
            for param, k in zip(params, KEYS):
                param -= 0.3 * np.mean([g[k] for g in per], axis=0)
        ax.plot(curve, label=label)
        print(f"c = {c_train}, {label:15}: J from {curve[0]:.3f} to {curve[-1]:.3f}")
    ax.set(title=f"c = {c_train}", xlabel="step", ylabel="J", yscale="log")
    ax.legend()
fig.suptitle("Gradient descent with the fixed and the as-written dJ/ds", y=1.04);
""")

md(r"""
## 9. Training on digits

The notes stop at the gradient; training takes many small steps against it, each on a
mini-batch of the data.
`backprop.run.train` does it with mini-batches, AdamW (Adam with decoupled weight
decay, the default optimiser) and a held-out validation set.
The data: scikit-learn's 1797 handwritten digits, 8 x 8 pixels, so $d = 64$ and $c = 10$.
""")

code(r"""
from backprop.config import TrainConfig
from backprop.data import load_dataset
from backprop.report import evaluate
from backprop.run import train

digits = load_dataset("digits")
print("train:", digits.X_train.shape, " test:", digits.X_test.shape, " classes:", digits.n_classes)

fig, axes = plt.subplots(1, 10, figsize=(8, 1.2))
for ax, img, label in zip(axes, digits.X_train, digits.y_train):
    ax.imshow(img.reshape(8, 8), cmap="gray_r")
    ax.set_title(int(label))
    ax.axis("off")
""")

md(r"""
The notes' two-layer network, $d = 64 \to m = 64$ ReLU units $\to c = 10$ scores. The
pixels go in scaled to $[0, 1]$, not standardised, so that the weights can be drawn as images
below. The optimiser is AdamW: Adam on the gradient of $J$, plus a *decoupled* weight decay
that shrinks every weight by the factor $(1 - \eta_t \lambda)$ at each step, whatever its
gradient. (This is not the L2 penalty $\frac{\lambda}{2}\|W\|^2$, which would add
$\lambda W$ to the gradient, and which Adam would then rescale.)
""")

code(r"""
config = TrainConfig(hidden=(64,), epochs=40, batch_size=32, optimizer="adamw", lr=3e-3,
                     weight_decay=3e-3, standardize=False, seed=0)
model, result = train(digits, config, progress=False)
metrics = evaluate(model, digits.X_test, digits.y_test)
print(model.net)
print(f"trained {result.epochs_run} epochs in {result.train_seconds:.1f} s")
print(f"test accuracy: {metrics['accuracy']:.3f}")
""")

code(r"""
h = result.history.as_columns()
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(h["epoch"], h["train_loss"], label="training")
ax.plot(h["epoch"], h["val_loss"], label="validation")
ax.set(xlabel="epoch", ylabel="cross-entropy J", yscale="log", title="Loss on digits")
ax.legend();
""")

md(r"""
Each hidden unit $i$ computes $z_i = \sum_k W^{[1]}_{ki} x_k + b_i$: a weighted sum of the
64 pixels, so column $i$ of $W^{[1]}$ (the row $W^{(1)}_{i,:}$ of the notes) can be drawn as an
8 x 8 image of what the unit looks for (red: positive weight, blue: negative). All 32
panels share **one** colour scale (the colourbar), so a faint panel is a unit with small
weights, not an artefact of rescaling each image on its own.

Page 2 predicts what happens at the border: $\frac{\partial J}{\partial W^{(1)}} = \delta^{(1)} x^T$,
so a pixel $x_j$ that is 0 in every training image gets a zero gradient at every step. Adam
then moves its weights by exactly 0, and only the decay shrinks them, by
$\prod_t (1 - \eta_t \lambda) \ge (1 - \eta_{\max} \lambda)^{\text{steps}}$, a few per cent at
most in this short run. So those weights keep their random
initial size (He normal: $\mathbb{E}|w| = \sqrt{2/d}\,\sqrt{2/\pi}$) and show as noise, not as
white; the cell after the images measures it. A *dead* unit (its $z$ negative for every
input, so $\operatorname{ReLU}'(z) = 0$ blocks all of its gradients) does not go blank
either: its weights get no gradient and keep their random start, like the border pixels.
It shows as noise with no stroke structure.
""")

code(r"""
W1_digits = model.net.params["W1"]  # d x m = 64 x 64
print("W1:", W1_digits.shape)
limit = np.abs(W1_digits[:, :32]).max()  # one colour scale for every panel
fig, axes = plt.subplots(4, 8, figsize=(7.6, 3.8))
for i, ax in enumerate(axes.flat):
    im = ax.imshow(W1_digits[:, i].reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.axis("off")
fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
fig.suptitle("First-layer weights of 32 hidden units (one shared scale)");
""")

code(r"""
never_on = np.flatnonzero(digits.X_train.max(axis=0) == 0)  # 0 in every training image
others = np.setdiff1d(np.arange(64), never_on)
d_in = W1_digits.shape[0]
print("pixels that are 0 in every training image:", never_on.tolist())
print(f"mean |W1| on them     : {np.abs(W1_digits[never_on]).mean():.3f}")
print(f"He normal at the start: {np.sqrt(2 / d_in) * np.sqrt(2 / np.pi):.3f}")
print(f"mean |W1| elsewhere   : {np.abs(W1_digits[others]).mean():.3f}")
n_fit = round(len(digits.X_train) * (1 - config.val_fraction))  # the rest is validation
steps = result.epochs_run * -(-n_fit // config.batch_size)
print(f"decay can shrink them at most to {(1 - config.lr * config.weight_decay) ** steps:.3f}"
      f" of their start ({steps} steps)")
""")

md(r"""
$\partial J / \partial W^{(1)} = \delta^{(1)} x^T$ for one digit: the row of the hidden unit
with the largest $|\delta^{(1)}|$, drawn as an 8 x 8 image. It is $\delta^{(1)}_i$ times the
digit itself: pixels that are 0 get no gradient.
""")

code(r"""
x_one = digits.X_train[:1] / 16.0  # the pixels as the network saw them, scaled to [0, 1]
_, g_one = model.net.loss_and_grads(x_one.astype(model.net.dtype), digits.y_train[:1])
unit = int(np.abs(g_one["b1"]).argmax())  # dJ/db1 = delta1 for one example
display(matrix_figure(g_one["W1"][:, unit], f"dJ/dW1 of unit {unit}: delta1 x^T", image_shape=(8, 8)))
""")

md(r"""
**Why depth needs ReLU: the recursion, layer by layer.** Section 7's
$\delta^{[l]} = (\delta^{[l+1]} W^{[l+1]T}) \odot f'(Z^{[l]})$ multiplies by $f'$ once per
layer on the way down. The sigmoid's $f' = \sigma(1 - \sigma) \le \frac14$, so with five hidden
sigmoid layers $\delta$ shrinks by about a factor 4 or more per layer and the first layer's
gradient is orders of magnitude smaller than the last's; ReLU's $f'$ is 0 or 1 and He
initialisation keeps the sizes level. What to look for: on the log axis the sigmoid's five
curves are **stacked**, $W_1$ lowest; ReLU's lie together. (The two-layer network of the notes
has too few layers for this to show: its two curves overlap.) 100 steps of plain gradient
descent on digits, each curve one layer's $\|\partial J / \partial W^{[l]}\|$:
""")

code(r"""
X_fit, y_fit = digits.X_train / 16.0, digits.y_train
for act in ("sigmoid", "relu"):
    deep_net = MLP([64, 32, 32, 32, 32, 32, 10], activation=act, seed=0, dtype=np.float64)
    norms = {f"W{l}": [] for l in range(1, 7)}
    rng = np.random.default_rng(0)
    for step in range(100):
        batch_idx = rng.choice(len(X_fit), 64, replace=False)
        _, g_step = deep_net.loss_and_grads(X_fit[batch_idx], y_fit[batch_idx])
        for k in norms:
            norms[k].append(float(np.linalg.norm(g_step[k])))
        for k, g in g_step.items():
            deep_net.params[k] -= 0.1 * g
    print(f"{act:8} ||dJ/dW1|| / ||dJ/dW6|| at the last step: {norms['W1'][-1] / norms['W6'][-1]:.1e}")
    display(gradient_norm_figure(norms, title=f"{act}, 6 layers"))
""")

code(r"""
from backprop.plots import confusion_counts

pred = model.predict(digits.X_test)
confusion = confusion_counts(digits.y_test, pred, n_classes=10)  # row: true, column: predicted

fig, ax = plt.subplots(figsize=(4.2, 3.6))
im = ax.imshow(confusion, cmap="Blues")
for (i, j), count in np.ndenumerate(confusion):
    if count:
        ax.text(j, i, count, ha="center", va="center", fontsize=8,
                color="white" if count > confusion.max() / 2 else "black")
ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
       title="Confusion matrix (test set)");
""")

code(r"""
wrong = np.flatnonzero(pred != digits.y_test)
print(len(wrong), "of", len(pred), "test digits misclassified")
fig, axes = plt.subplots(1, min(len(wrong), 10), figsize=(8, 1.4), squeeze=False)
for ax, i in zip(axes.flat, wrong):
    ax.imshow(digits.X_test[i].reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{digits.y_test[i]} → {pred[i]}", fontsize=9)
    ax.axis("off")
fig.suptitle("Misclassified: true → predicted", y=1.08);
""")

# ============================================================================ 9. diabetes
md(r"""
## 10. Regression on diabetes

The regression network of section 2 ($J = \frac12 (y - o)^2$, averaged over the batch) on
scikit-learn's diabetes set: 10 measurements per patient, target a disease-progression
score one year later. The baseline predicts, for everyone, the mean of the **training**
targets: the best constant a model could learn without looking at the test set.
""")

code(r"""
diabetes = load_dataset("diabetes")
print("train:", diabetes.X_train.shape, " test:", diabetes.X_test.shape)
reg_config = TrainConfig(hidden=(32,), epochs=200, batch_size=32, lr=1e-3, patience=20, seed=0)
reg_model, reg_result = train(diabetes, reg_config, progress=False)
reg_metrics = evaluate(reg_model, diabetes.X_test, diabetes.y_test)
print(f"stopped after {reg_result.epochs_run} epochs (best: {reg_result.best_epoch})")
print(f"test RMSE: {reg_metrics['rmse']:.1f}")
baseline = np.sqrt(np.mean((diabetes.y_test - diabetes.y_train.mean()) ** 2))
print(f"training-mean predictor RMSE: {baseline:.1f}")
""")

code(r"""
o = reg_model.forward(diabetes.X_test).ravel()
fig, ax = plt.subplots(figsize=(3.6, 3.4))
ax.scatter(diabetes.y_test, o, s=10, alpha=0.7)
lims = [diabetes.y_test.min(), diabetes.y_test.max()]
ax.plot(lims, lims, "k--", lw=1, label="perfect")
ax.set(xlabel="true progression", ylabel="predicted o", title="Diabetes (test set)")
ax.legend();
""")

md(r"""
## 11. The full run

The same code trains on Fashion-MNIST (60 000 images of 28 x 28 pixels, 10 kinds of
clothing) from the command line, with the default recipe printed below from
`TrainConfig` itself (so that this text cannot go stale), and writes the model, its metrics
and the same plots as above into `runs/`; `docs/training.md` has the measured accuracy:

```bash
.venv/bin/backprop train --data fashion-mnist
.venv/bin/backprop gradcheck          # every gradient of this notebook, as a table
```

The errata are in [`docs/errata.md`](../docs/errata.md), each with the test that shows it.
""")

code(r"""
recipe = TrainConfig()
print("hidden:", recipe.hidden, " activation:", recipe.activation)
print("optimizer:", recipe.optimizer, " lr:", recipe.lr, " weight decay:", recipe.weight_decay,
      " schedule:", recipe.schedule, " batch size:", recipe.batch_size)
""")


# ============================================================================ 11. exercises
md(r"""
## 12. Exercises

Try each before asking for the answer. The answers are not in this notebook, so no notebook
viewer (JupyterLab, VS Code, an HTML export) can show them: `print(exercises.answer(name))`
prints one from `backprop/exercises.py`, its reasoning and the code that checks it (the name
is in brackets after each question).

**1.** Derive $\partial J / \partial b^{(1)}$ for a batch (pages 5-6): it is part of the
exercise of section 5, and `exercises.check("columns", ...)` checks it.

**2.** Explain why the notes' as-written $\partial J / \partial s$ sums to $2 - c$ over the
classes, while the right one sums to 0; and why, for $c = 2$, where both sum to 0, the
as-written one is still wrong. [`"softmax-sum"`]

**3.** Set $m = n$ and run page 5's $Z = W^{(1)} X + b^{(1)} 1_m^T$: what happens, and why
would a test with $m = n$ never find the typo? [`"ones-m"`]

**4.** Build the row form (page 7) from the column form: which transposes turn
`classification_batch`'s gradients into `classification_batch_rows`'? [`"rows-from-columns"`]

**5.** Replace the ReLU by tanh ($\tanh' = 1 - \tanh^2$) and check every gradient with the
finite-difference check. [`"tanh"`]
""")

code(r"""
# Your answers here; then, for example: print(exercises.answer("softmax-sum"))
""")


# ============================================================================ build
def build() -> nbformat.NotebookNode:
    """The notebook, without outputs."""
    cells = [new_markdown_cell(t) if kind == "markdown" else new_code_cell(t) for kind, t in CELLS]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    # Stable cell ids, so regenerating the notebook gives a small diff.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel started from this interpreter, storing outputs."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(HERE)}},
        record_timing=False,
    )
    client.execute()
    nb.metadata.pop("widgets", None)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="write the cells, do not execute")
    parser.add_argument("--out", type=Path, default=NOTEBOOK, help="where to write the notebook")
    args = parser.parse_args(argv)
    nb = build()
    if not args.no_run:
        nb = execute(nb)
    nbformat.validate(nb)
    nbformat.write(nb, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
