"""Time data loading: CIFAR-10 from a folder, and a photo folder (landscapes): first load (decode +
write cache) and second (cache hit); for the photo folder also the streaming training pipeline's
images/s (memory-mapped cache -> random crops -> Lab, what training reads) and peak memory.

    python benchmarks/load_data.py [--data-dir ../shared/data/cifar10-jpeg] [--photos landscapes --image-size 64]
"""
import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import contracts  # noqa: E402
import data  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR", "../shared/data/cifar10-jpeg"))
    p.add_argument("--photos", default="landscapes", help="a photo folder ('landscapes': $LANDSCAPES_DIR); '' skips")
    p.add_argument("--image-size", type=int, default=64)
    args = p.parse_args()
    if args.photos:
        photos(args.photos, args.image_size)
    with tempfile.TemporaryDirectory() as cache:  # a fresh cache, so the first load really decodes
        for label in ("first load (decode, write cache)", "second load (cache)"):
            t = time.perf_counter()
            (x, _), (xt, _) = data.load_cifar10(args.data_dir, cache_dir=cache)
            print(f"{label:34s} {time.perf_counter() - t:6.2f} s   train {x.shape} test {xt.shape}")


def photos(name, size):
    import resource
    with tempfile.TemporaryDirectory() as cache:
        for label in ("first load (decode, write cache)", "second load (cache)"):
            t = time.perf_counter()
            fd = data.load_folder_split(name, "train", data.crop_size(size), cache_dir=cache)
            print(f"{name} {label:34s} {time.perf_counter() - t:6.2f} s   {fd.images.shape}, "
                  f"{int(fd.gray.sum())} black-and-white")
        ds = data.make_folder_train(fd, fd.colour_index(), size, contracts.get("L", "ab"), batch_size=128)
        t = time.perf_counter()
        n = sum(int(x.shape[0]) for x, _ in ds)
        print(f"{name} streaming pipeline (crop, flip, Lab) {n / (time.perf_counter() - t):8.0f} images/s at {size} px")
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
