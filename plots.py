"""Every figure of the project (matplotlib, visualkeras): loss curves, colorization grids, metric
bars, architecture diagrams. The notebooks and evaluation.py call these; nothing else draws."""

import pathlib

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.ticker import MultipleLocator

import colour
import models


def save(fig, path, dpi=150):
    """Write a figure (PNG), making its folder; returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def save_image(image, path):
    """Write a Pillow image as PNG, making its folder; returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def grid_and_legend(ax):
    """A light grid, and the legend to the right of the axes, never over the data."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def plot_losses(records, title=None):
    """Training (solid) and validation (dashed) loss per epoch of each record (training JSON), one
    panel per kind of loss (models with the same outputs share a loss; different losses are not
    comparable on one axis). Whole epochs on the x axis at any length, the legend beside the data."""
    groups = {}
    for rec in records:
        groups.setdefault(rec.get("outputs", "?"), []).append(rec)
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(4.8 * max(1, len(groups)) + 1.6, 3.6), squeeze=False)
    i = 0
    for ax, (outputs, recs) in zip(axes[0], groups.items()):
        longest = 1
        for rec in recs:
            h, color = rec["history"], f"C{i}"
            i += 1
            epochs = np.arange(1, len(h["loss"]) + 1)
            longest = max(longest, len(epochs))
            ax.plot(epochs, h["loss"], "-o", color=color, markersize=3, label=f"{rec['model']} train")
            if "val_loss" in h:
                ax.plot(epochs, h["val_loss"], "--s", color=color, markersize=3, label=f"{rec['model']} val")
        # whole epochs at any length (MaxNLocator falls back to fractions on a one-epoch axis)
        ax.xaxis.set_major_locator(MultipleLocator(max(1, int(np.ceil(longest / 10)))))
        ax.set_xlim(0.5, longest + 0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.set_title(f"{outputs} outputs ({', '.join(r['model'] for r in recs)})", fontsize=9)
        grid_and_legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
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
    return colour.to_uint8(colour.to_grayscale(images))[..., 0]


def plot_metric_bars(rows, gt_colorfulness=None):
    """PSNR and colorfulness of every model and baseline, side by side."""
    names = [r["model"] for r in rows]
    colors = [{"baseline": "0.6", "colorizer": "C0", "variant": "C1"}.get(r["kind"], "C2") for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB, higher is better)"),
                           (axes[1], "colorfulness", "colorfulness (Hasler & Süsstrunk M3)")):
        ax.bar(names, [r[key] for r in rows], color=colors)
        ax.set_title(label, fontsize=10)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    if key == "colorfulness" and gt_colorfulness is not None:
        axes[1].axhline(gt_colorfulness, color="k", ls="--", lw=1, label=f"ground truth {gt_colorfulness:.1f}")
        axes[1].legend(fontsize=8)
    lo = min(r["psnr"] for r in rows)
    axes[0].set_ylim(max(0, lo - 3), None)
    fig.tight_layout()
    return fig


def plot_per_class(stats, class_names, model_name):
    """Per-class PSNR and colorfulness (with the ground truth's) of one model."""
    x = np.arange(len(class_names))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].bar(x, stats["psnr"], color="C0")
    axes[0].set_title(f"{model_name}: PSNR per class (dB)", fontsize=10)
    axes[0].set_ylim(max(0, stats["psnr"].min() - 3), None)
    axes[1].bar(x - 0.2, stats["colorfulness"], 0.4, label=model_name, color="C0")
    axes[1].bar(x + 0.2, stats["gt_colorfulness"], 0.4, label="ground truth", color="0.6")
    axes[1].set_title("colorfulness per class", fontsize=10)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xticks(x, class_names, rotation=45, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def show_gray_vs_color(images, n=8):
    """Figure 1: `n` colour images above their grayscale versions. Returns the matplotlib figure."""
    images = np.asarray(images)[:n]
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n, 3.0), squeeze=False)
    gray = colour.to_grayscale(images)[..., 0]
    for i in range(n):
        axes[0, i].imshow(images[i])
        axes[1, i].imshow(gray[i], cmap="gray", vmin=0, vmax=1)
        for ax in axes[:, i]:
            ax.axis("off")
    axes[0, 0].set_title("colour", loc="left", fontsize=9)
    axes[1, 0].set_title("grayscale (BT.601)", loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_architecture(name_or_model, path):
    """Write a visualkeras layered diagram of a model (a name or a built model) to `path` (PNG)."""
    import keras
    import visualkeras
    import warnings
    model = models.get_model(name_or_model) if isinstance(name_or_model, str) else name_or_model
    model = getattr(model, "generator", model)  # a GAN is drawn by its generator
    for layer in model.layers:  # visualkeras 0.2 reads the Keras 2 attribute `output_shape`
        if not hasattr(layer, "output_shape"):
            layer.output_shape = tuple(layer.output.shape)
    # batch norm and activations hidden: they do not change shapes and crowd the picture
    with warnings.catch_warnings():  # visualkeras 0.2 warns about its own default arguments; nothing to fix here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="The legend_text_spacing_offset parameter is deprecated")
        visualkeras.layered_view(model, to_file=str(path), legend=True, scale_xy=4, scale_z=0.5, max_z=120,
                                 spacing=12, type_ignore=[keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.LeakyReLU])
    return path


def plot_photos(photos, by_model):
    """One row per photo: its gray input, each model's colorization (`by_model`: {label: {photo
    name: uint8 RGB}}, a column each, titled with its label), the original."""
    fig, axes = plt.subplots(len(photos), 2 + len(by_model), figsize=(3 * (2 + len(by_model)), 2.6 * len(photos)),
                             squeeze=False)
    for i, name in enumerate(photos):
        columns = (gray_column(photos[name][None])[0], *(c[name] for c in by_model.values()), photos[name])
        for ax, im, title in zip(axes[i], columns, ("gray input", *by_model, "original")):
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None)
            ax.set_title(f"{name}: {title}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_tradeoff(calibration, gt_colorfulness=None, title=None):
    """Accuracy against colourfulness over a calibrated model's decoding settings (its record's
    `calibration`: each setting's validation PSNR and colourfulness, whether it surely beats gray),
    with gray's PSNR, 90 % of the originals' colourfulness and the chosen setting marked."""
    sweep, chosen, gray = calibration["sweep"], calibration["chosen"], calibration["gray"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for sure, marker, label in ((True, "o", "beats gray on all five (95 % of resamples)"), (False, "x", "does not")):
        pts = [s for s in sweep if bool(s["surely_beats_gray"]) == sure]
        if pts:
            ax.scatter([s["colorfulness"] for s in pts], [s["psnr"] for s in pts], marker=marker, label=label)
    ax.scatter([chosen["colorfulness"]], [chosen["psnr"]], s=160, facecolors="none", edgecolors="red",
               label=f"chosen: mix {chosen['mix']:g}, gain {chosen['gain']:g}")
    ax.axhline(gray["psnr"], color="gray", ls="--", lw=1, label=f"gray {gray['psnr']:.2f} dB")
    ax.axhline(gray["psnr"] + 2, color="gray", ls=":", lw=1, label="gray + 2 dB")
    if gt_colorfulness:
        ax.axvline(0.9 * gt_colorfulness, color="C2", ls=":", lw=1, label="90 % of the originals' colourfulness")
    ax.set_xlabel("colourfulness (validation photos)")
    ax.set_ylabel("PSNR dB (validation photos)")
    grid_and_legend(ax)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_hint_curve(curves, reference=None):
    """PSNR and acc@2 against the number of hints per photo: `curves` {label: {count: scores}}
    (evaluation.hint_curve), `reference` {label: scores} drawn as horizontal lines (models without hints)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label in zip(axes, ("psnr", "acc2"), ("PSNR dB", "acc@2")):
        for i, (name, rows) in enumerate(curves.items()):
            counts = sorted(rows)
            ax.plot(counts, [rows[k][key] for k in counts], "-o", color=f"C{i}", markersize=4, label=name)
        for j, (name, scores) in enumerate((reference or {}).items()):
            ax.axhline(scores[key], color=f"C{len(curves) + j}", ls="--", lw=1, label=name)
        ax.set_xlabel("hints per photo")
        ax.set_ylabel(f"{label} (test photos)")
        grid_and_legend(ax)
    fig.tight_layout()
    return fig


def plot_hint_examples(originals, by_count, hints):
    """One row per photo: its gray input, the colorization with each number of hints (`by_count`
    {count: uint8 RGB batch}; `hints` {count: the hints per photo}, drawn as circles in their colour),
    the original."""
    counts = sorted(by_count)
    fig, axes = plt.subplots(len(originals), 2 + len(counts), figsize=(2.6 * (2 + len(counts)), 2.6 * len(originals)),
                             squeeze=False)
    for i, original in enumerate(originals):
        columns = [(gray_column(original[None])[0], "gray input", [])]
        columns += [(by_count[k][i], f"{k} hints", hints[k][i]) for k in counts]
        columns.append((original, "original", []))
        for ax, (im, title, points) in zip(axes[i], columns):
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None)
            for x, y, c in points:
                ax.scatter([x], [y], s=40, c=[c], edgecolors="white", linewidths=1.2)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


class HintPicker:
    """Colour hints by clicking, in a notebook: the photo (left) and its colorization with the hints
    so far (right). In JupyterLab (ipympl's canvas, made here: no `%matplotlib widget` needed), a click
    on the left photo adds a hint there in the colour of the picker (ipywidgets), and the right side is
    colorized again; `undo` and `clear` take hints back. Run without clicks (papermill, a script) the
    figure is drawn once with the `hints` given; outside a Jupyter kernel, or without ipympl, it is a
    plain figure. `colorizer`: a Colorizer of a hint model (colorizer_7); `rgb`: the photo
    (read_photo's uint8 array); `hints`: [(x, y, colour)] as Colorizer.colorize_photo takes them."""

    def __init__(self, colorizer, rgb, hints=(), colour="#3fa7b5", interactive=None):
        self.colorizer, self.rgb, self.hints = colorizer, np.asarray(rgb), list(hints)
        self.fig = (_widget_figure((10, 4.2)) if (in_notebook() if interactive is None else interactive) else None) \
            or plt.figure(figsize=(10, 4.2))
        self.ax_in, self.ax_out = self.fig.subplots(1, 2)
        gray = self.rgb[..., 0] if self.rgb.shape[-1] == 1 else gray_column(self.rgb[None])[0]
        self.ax_in.imshow(gray, cmap="gray", vmin=0, vmax=255)
        self.ax_in.set_title("click to add a hint", fontsize=9)
        self.result = self.ax_out.imshow(np.zeros(self.rgb.shape[:2] + (3,), np.uint8))
        for ax in (self.ax_in, self.ax_out):
            ax.axis("off")
        self.marks = self.ax_in.scatter([], [], s=60, edgecolors="white", linewidths=1.5)
        self.picker = None
        self.colour = colour
        self.fig.canvas.mpl_connect("button_press_event", self._clicked)
        self.update()

    def update(self):
        """Colorize with the hints so far and redraw: returns the colorized Pillow image."""
        image = self.colorizer.colorize_photo(self.rgb, hints=self.hints)
        self.result.set_data(np.asarray(image))
        self.ax_out.set_title(f"{self.colorizer.name}, {len(self.hints)} hint{'s' * (len(self.hints) != 1)}", fontsize=9)
        xy = np.array([(x, y) for x, y, _ in self.hints], float).reshape(-1, 2)
        self.marks.set_offsets(xy)
        self.marks.set_facecolors([c for _, _, c in self.hints] or "none")
        self.fig.canvas.draw_idle()
        return image

    def add(self, x, y, colour=None):
        """Add a hint at photo pixel (x, y) in `colour` (default: the picker's) and colorize again."""
        self.hints.append((int(x), int(y), colour or (self.picker.value if self.picker else self.colour)))
        try:
            return self.update()
        except ValueError:
            self.hints.pop()  # outside the photo, or not a colour: the message says which
            raise

    def undo(self, *_):
        if self.hints:
            self.hints.pop()
            self.update()

    def clear(self, *_):
        self.hints.clear()
        self.update()

    def _clicked(self, event):
        if event.inaxes is self.ax_in and event.xdata is not None:  # pixel centres are at whole numbers
            h, w = self.rgb.shape[:2]
            self.add(min(max(round(event.xdata), 0), w - 1), min(max(round(event.ydata), 0), h - 1))

    def widget(self):
        """The figure with a colour picker and undo / clear buttons (ipywidgets), to display in a notebook."""
        import ipywidgets as w
        self.picker = w.ColorPicker(value=self.colour, description="hint colour")
        undo, clear = w.Button(description="undo"), w.Button(description="clear")
        undo.on_click(self.undo)
        clear.on_click(self.clear)
        canvas = self.fig.canvas if isinstance(self.fig.canvas, w.DOMWidget) else w.Output()
        if isinstance(canvas, w.Output):  # not in a notebook's kernel: the static figure
            with canvas:
                plt.show()
        return w.VBox([w.HBox([self.picker, undo, clear]), canvas])


def in_notebook():
    """Whether this runs in a Jupyter kernel (JupyterLab, papermill), where ipympl widgets can show."""
    try:
        from IPython import get_ipython
        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except ImportError:
        return False


def _widget_figure(figsize):
    """A Matplotlib figure on ipympl's canvas (an ipywidget that takes clicks), made without pyplot:
    the notebook's other figures keep their inline backend; None without ipympl."""
    try:
        from ipympl.backend_nbagg import Canvas, FigureManager
    except ImportError:  # not installed (requirements.txt pins it): a plain figure, no clicks
        return None
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureManager(Canvas(fig), 0)
    fig.canvas.header_visible = False
    return fig
