"""Interactive explorers and small HTML figures for the notebooks (``ipywidgets``), one module per
chapter's idea. Nothing else in ``gptlib`` imports this package.

Widgets need a running kernel to react; the built book shows each explorer in the state it was
saved in, with a static figure beside it in the chapter. Everything is re-exported here, so
``from gptlib.viz import attention_explorer`` works as well as ``gptlib.viz.attention``.
"""

from gptlib.viz.tokens import distribution_table, next_token_explorer
from gptlib.viz.attention import (attention_weights, attention_table, attention_summary,
                                  attention_explorer)
from gptlib.viz.masking import mask_row_html, mask_explorer
from gptlib.viz.residual import log_profile_chart, gradient_flow_explorer
from gptlib.viz.positions import (value_strip, line_chart, cosine_similarity_matrix,
                                  position_explorer)
from gptlib.viz.parameters import (PARAMETER_GROUPS, parameter_groups, parameter_table,
                                   GPT_PRESETS, parameter_explorer)
from gptlib.viz.architecture import plot_gpt_architecture
from gptlib.viz.sampling import sampling_distribution, sampling_table, sampling_explorer
from gptlib.viz.finetune import genre_probabilities, genre_explorer
from gptlib.viz.controls import fmt, on_grid, check_on_grid, value_slider
from gptlib.viz.scaling import run_plan, run_plan_table, scale_explorer
from gptlib.viz.in_context import in_context_explorer
from gptlib.viz.ladder import plot_ladder

__all__ = ["distribution_table", "next_token_explorer", "attention_weights", "attention_table",
           "attention_summary", "attention_explorer", "mask_row_html", "mask_explorer",
           "log_profile_chart", "gradient_flow_explorer", "value_strip", "line_chart",
           "cosine_similarity_matrix", "position_explorer", "PARAMETER_GROUPS", "parameter_groups",
           "parameter_table", "GPT_PRESETS", "parameter_explorer", "plot_gpt_architecture",
           "sampling_distribution", "sampling_table", "sampling_explorer", "genre_probabilities",
           "genre_explorer", "fmt", "on_grid", "check_on_grid", "value_slider", "run_plan",
           "run_plan_table", "scale_explorer", "in_context_explorer", "plot_ladder"]
