"""Evaluation: run set-ups (members alone, strategies) on question sets and report how they did.

`conclave eval` is the command; the pieces are usable from Python:

```python
from conclave.evaluation import load_dataset, plan_setups, EvaluationRun, build_report
```
"""

from conclave.evaluation.cache import CachingRegistry, CallCache
from conclave.evaluation.dataset import Dataset, EvalRow, load_dataset
from conclave.evaluation.evaluate import EvaluationRun, RowResult
from conclave.evaluation.report import Report, build_report
from conclave.evaluation.scoring import Scorers, score_letter, score_number, score_text
from conclave.evaluation.setups import Setup, plan_setups
from conclave.evaluation.stats import compare_paired, sign_test_p, wilson_interval

__all__ = [
    "CachingRegistry",
    "CallCache",
    "Dataset",
    "EvalRow",
    "EvaluationRun",
    "Report",
    "RowResult",
    "Scorers",
    "Setup",
    "build_report",
    "compare_paired",
    "load_dataset",
    "plan_setups",
    "score_letter",
    "score_number",
    "score_text",
    "sign_test_p",
    "wilson_interval",
]
