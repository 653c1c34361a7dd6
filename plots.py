"""Figures shared by the notebooks: loss curves and colorization grids (matplotlib)."""

import numpy as np
import matplotlib.pyplot as plt

import data


def plot_losses(records, title=None):
    """Training (solid) and validation (dashed) loss per epoch of each record (training JSON)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, rec in enumerate(records):
        h, color = rec["history"], f"C{i}"
        epochs = np.arange(1, len(h["loss"]) + 1)
        ax.plot(epochs, h["loss"], "-", color=color, label=f"{rec['model']} train")
        if "val_loss" in h:
            ax.plot(epochs, h["val_loss"], "--", color=color, label=f"{rec['model']} val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (each model's own)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_grid(columns, titles=None, row_labels=None, size=1.3):
    """Images side by side: `columns` is a dict title -> uint8 images (N,H,W,3) or gray (N,H,W[,1]);
    row i shows image i of every column."""
    names = list(columns)
    n = len(next(iter(columns.values())))
    fig, axes = plt.subplots(n, len(names), figsize=(size * len(names), size * n), squeeze=False)
    for j, name in enumerate(names):
        for i, img in enumerate(np.asarray(columns[name])):
            ax = axes[i, j]
            if img.ndim == 2 or img.shape[-1] == 1:
                ax.imshow(img.squeeze(), cmap="gray", vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
            else:
                ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title((titles or {}).get(name, name), fontsize=8)
            if j == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[i], fontsize=7)
    fig.tight_layout(pad=0.3)
    return fig


def gray_column(images):
    """uint8 RGB -> uint8 gray (N,H,W) for a 'gray input' column."""
    return data.to_uint8(data.to_grayscale(images))[..., 0]
