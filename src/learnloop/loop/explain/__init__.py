"""Model-agnostic explanations of fitted tabular families: SHAP, LIME and global importance.

* :func:`explain_shap` — additive attributions per original feature (tree, linear or kernel
  SHAP), with a per-row check that they add up to the model's output;
* :func:`explain_lime` — LIME's local linear surrogate on the original features;
* :func:`global_importance` — mean |SHAP| over a sample, beside the estimator's own importance.

All three take a fitted or loaded ``TabularFamily`` and return JSON-able dicts. ``shap`` and
``lime`` are the ``explain`` extra; without them ``MissingDependency`` is raised. See
``docs/explanations.md``.
"""

from learnloop.loop.explain.importance import estimator_importance, global_importance
from learnloop.loop.explain.lime_explain import explain_lime
from learnloop.loop.explain.shap_explain import explain_shap

__all__ = ["estimator_importance", "explain_lime", "explain_shap", "global_importance"]
