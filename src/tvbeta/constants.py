"""One table of the names, dimensions and seed defaults shared across tvbeta.

Labelled outputs (pandas, xarray) and saved specs use these names, so a result, a spec file
and a posterior all speak the same words. The numbers are the seed's defaults and bounds
(see ``../shared/seed/seed_api.md``); change them here, never inline.
"""

from __future__ import annotations

# --- dimension and coordinate names (xarray, tidy frames) ---------------------------------
TIME = "time"
"""Time axis: one entry per row of the data (predicted t|t-1, filtered t|t, smoothed t|n)."""
STATE = "state"
"""State axis: the betas, ``("Intercept", *factors)`` with an intercept, else the factors."""
STATE2 = "state_"
"""Second state axis of covariance matrices, ``(time, state, state_)``."""
FUND = "fund"
"""Fund axis of many funds' results (`tvbeta.funds.fit_funds`): one entry per target column."""
PARAMETER = "parameter"
"""Parameter axis of estimates (Q[state], R, gamma, phi[state]), named as `MLEFit.params`."""
VARIABLE = "variable"
"""Name column of the tidy long frame (``KalmanResult.to_frame``)."""
VALUE = "value"
"""Value column of the tidy long frame."""

DIMS: dict[str, tuple[str, ...]] = {
    # a run of the filter (`KalmanResult.to_xarray`, `.to_frame`): the steps after the burn
    **dict.fromkeys(("y", "y_pred", "residuals", "F", "log_likelihood_t"), (TIME,)),
    **dict.fromkeys(("beta", "beta_sd", "beta_pred", "beta_smooth", "beta_smooth_sd",
                     "kalman_gain", "design"), (TIME, STATE)),
    **dict.fromkeys(("beta_cov", "beta_pred_cov", "beta_smooth_cov"), (TIME, STATE, STATE2)),
    # a posterior (`BayesFit.tree`; "y" is also the observed variable and its log_likelihood)
    "sigma_beta": (STATE,),
    "Q": (STATE, STATE2),
    "sigma_eps": (),
    # mean-reverting betas: the one-year persistence and the per-period one, and the sd
    # sigma_beta sqrt(g(phi)) through which sigma_beta is sampled
    # (`estimate.bayes.model.reverting_sigma_beta`)
    "phi_annual": (STATE,),
    "phi": (STATE,),
    "sigma_drift": (STATE,),
    "gamma": (),  # the elasticity of a volatility-scaled R_t = sigma_eps^2 h_t^gamma
    "index_half_life": (),  # its variance index's half-life in years, when sampled
    # the horseshoe of sigma_beta (`estimate.bayes.model.horseshoe_sigma_beta`)
    "shrink_tau": (),
    "shrink_lambda": (STATE,),
    "shrink_z": (STATE,),
    # a posterior's beta paths (`BayesFit.beta_paths`): every summary of every kind
    "beta_path": (TIME, STATE),
}
"""The dims of every named output: array code returns bare arrays, the labelling reads here."""

INTERCEPT = "Intercept"
"""Name of the intercept state; it is always the FIRST state (the seed's ``set_intercept``)."""

NOISES: tuple[str, ...] = ("constant", "volatility")
"""Forms of the observation variance: a constant R, or R_t = sigma_eps^2 h_t^gamma with a
variance index h_t known at t-1 (`tvbeta.model.volatility`)."""

BETAS: tuple[str, ...] = ("random_walk", "mean_reverting")
"""How the betas move: a random walk (T = I), or towards long-run means mu with one-period
persistence phi in (0, 1] per state (`tvbeta.model.reversion`)."""

SHRINKAGES: tuple[str, ...] = ("none", "horseshoe")
"""Priors of the drift sds sigma_beta: independent ones, or a regularised horseshoe that lets
the data decide which betas are static (`tvbeta.estimate.bayes.model.horseshoe_sigma_beta`)."""

Q_FORMS: tuple[str, ...] = ("diag", "full")
"""Forms of a constant state noise covariance Q that MLE and Bayes estimate: a diagonal, or a
full symmetric matrix (through its Cholesky factor)."""

# --- the seed's spec defaults (``KalmanSpec(K)``) ----------------------------------------
DEFAULT_MODEL_NAME = "Kalman Model"
DEFAULT_P0_SCALE = 100.0
"""P_0 = 100 I_K: a vague prior on the initial betas (units: beta^2)."""
DEFAULT_Q_SCALE = 1e-4
"""Q_t = 1e-4 I_K: beta drift variance per step (units: beta^2 per step)."""
DEFAULT_R = 1e-2
"""R_t = 1e-2: observation variance (units: squared returns)."""
INTERCEPT_P0 = 1e6
"""P_0[0, 0] of the intercept added by ``set_intercept``."""

# --- the seed's scalar maximum-likelihood setters ----------------------------------------
MLE_START = 1e-2
"""Starting value of the scalar q (Q = q I) or r (R = r), optimised on the log scale."""
Q_MLE_BOUNDS = (1e-8, 10.0)
R_MLE_BOUNDS = (1e-6, 100.0)

# --- the likelihood's burn-in -----------------------------------------------------------
def default_burn(k_states: int) -> int:
    """Return the observed steps a likelihood leaves out when given no ``burn``: K, the states.

    The default of the MLE, Bayes, statsmodels cross-check, comparison and command line. Under
    the seed's vague prior (P0 = 100 I, 1e6 for the intercept) the first K terms are mostly
    about the prior; leaving them out approximates the exact diffuse likelihood (Durbin &
    Koopman 2012, sec. 5.1). The seed's own setters and engine keep the seed's ``burn=0``.
    """
    return int(k_states)


# --- Bayesian sampler defaults -----------------------------------------------------------
TARGET_ACCEPT = 0.8
"""NUTS target acceptance rate (Stan's, PyMC's and nutpie's default). The sds are sampled signed
(`tvbeta.estimate.bayes.model.SignedScale`): no neck at sigma -> 0, no divergence at 0.8 on the
demo's and the seed's data, 20-25% fewer gradients per draw than at 0.9."""
HORSESHOE_TARGET_ACCEPT = 0.9
"""The lowest target acceptance rate of a fit with ``shrinkage="horseshoe"``: its posterior has a
curved ridge that gives divergences at 0.8 (`tvbeta.estimate.bayes.model.horseshoe_sigma_beta`),
so `fit_spec` runs it at max(target_accept, 0.9)."""
NUTPIE_ADAPTATION = "low_rank"
"""nutpie's mass-matrix adaptation in `fit_bayes`: diagonal plus a low-rank correction fitted
by minimising the Fisher divergence (Seyboldt, Carlson & Carpenter 2026), not nutpie's diagonal
default. Two correlated factors trade their drifts off, a ridge (FPE on PFF, ICVT and HYG:
posterior correlation -0.46 of the PFF and HYG sds) a diagonal mass matrix cannot align with:
tail ESS 368-1612 over seeds 1-14 (2 fits failed the checks) against 431-1202 (none failed),
at the same cost per draw. PyMC's NUTS has no such option."""
NUTPIE_ADAPTATION_REVERTING = "diag"
"""nutpie's adaptation for mean-reverting betas (``betas="mean_reverting"``): nutpie's diagonal
one. With the low-rank one such a fit spent most of its tuning in nutpie's early window (its
first 30%: 40-45 leapfrog steps a draw against 12 after it, NoDur on the four factors), at no
gain after it: over NoDur, Enrgy, Money and Hlth (573 months, k = 5, 4 x (1000 + 1000), seeds
1-3) the diagonal runs took 11-16 s against 15-21 s with bulk ESS as high or higher (Enrgy
1117-1439 against 1052-1117) and every check passed; on the seed case (FPE on PFF and ICVT)
both ran in 2.6-3.0 s with the same ESS."""

# --- the seed's dictionaries -------------------------------------------------------------
DESCRIBE_KEYS: tuple[str, ...] = (
    "Model Name", "K (State Dim)", "Has Intercept", "Target Column", "Factor Columns",
    "Initial Beta", "Initial Covariance (P_0 diag)", "Q Type", "R Type", "Q Scalar", "R Scalar",
    "Q Mode", "R Mode", "Observation Function", "Transition Function",
)  # fmt: skip
"""Keys of ``KalmanSpec.describe()`` (and of a result's ``meta``), in the seed's order."""

CONSTANT = "constant"
DYNAMIC = "dynamic"
"""Values of "Q Type" / "R Type": one matrix for all steps, or one per step."""

SEED_RESULT_KEYS: tuple[str, ...] = (
    "beta", "beta_cov", "y_pred", "residuals", "kalman_gain", "log_likelihood",
    "log_likelihood_t", "meta", "H",
)  # fmt: skip
"""Keys of the seed engine's result dict; ``KalmanResult[key]`` accepts each of them."""
