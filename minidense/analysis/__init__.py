"""Analysis of trained models: the feature-reuse heatmap of DenseNet (Huang et al., CVPR 2017,
Figure 5), its plots, and a check of the paper's four observations on a user's model.

    from minidense.analysis import feature_reuse, plot_feature_reuse, reuse_observations
    matrices = feature_reuse(model)          # one (L+1, L+1) array per dense block
    plot_feature_reuse(matrices, "figure5.png")
    for obs in reuse_observations(matrices):
        print(obs["id"], obs["holds"], obs["evidence"])
"""
from .feature_reuse import (feature_reuse, paper_figure5, rescale_columns, reuse_observations,
                            write_feature_reuse_csv)
from .plot import plot_compare_paper, plot_feature_reuse
from .cli import heatmap_main, write_feature_reuse

__all__ = ["feature_reuse", "rescale_columns", "paper_figure5", "reuse_observations",
           "write_feature_reuse_csv", "plot_feature_reuse", "plot_compare_paper",
           "write_feature_reuse", "heatmap_main"]
