"""Estimation of Q and R: MLE, Bayesian, and the statsmodels twin used as a test oracle."""

from tvbeta.estimate.statsmodels_twin import StatsmodelsReference, TVPRegression, statsmodels_filter

__all__ = ["StatsmodelsReference", "TVPRegression", "statsmodels_filter"]
