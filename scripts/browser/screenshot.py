"""A PNG of a report as headless Chromium draws it (the README's docs/report.png):

    hpsearch --grid_module=sims.logreg.hpsearch_config --run_cwd=sims/logreg \\
        --out_dir=out/logreg --visible_gpus=-1 --num_jobs=2
    hpsearch report out/logreg
    python scripts/browser/screenshot.py out/logreg/report.html docs/report.png --height 2400
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from browser import load_report, open_browser, screenshot  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=None, help="default: the whole page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as profile:
        driver = open_browser(Path(profile), width=args.width)
        try:
            state = load_report(driver, args.report)
            screenshot(driver, args.png, args.height)
        finally:
            driver.quit()
    print(f"{args.png}: {state}, {args.png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
