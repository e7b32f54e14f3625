"""A PNG of a report as headless Chromium draws it. The README's docs/report.png:

    hpsearch --grid_module=sims.logreg.hpsearch_config --run_cwd=sims/logreg \\
        --out_dir=out/logreg --visible_gpus=-1 --num_jobs=2
    hpsearch report out/logreg
    python scripts/browser/screenshot.py out/logreg/report.html docs/report.png --height 2400

docs/img/report-asha.png, an early-stopping search (ASHA pruned most of its 30 runs; the
plots show them at their last report):

    hpsearch --search_file=sims/curves/search.yaml --run_cwd=sims/curves \\
        --out_dir=out/curves --visible_gpus=-1 --num_jobs=2
    hpsearch report out/curves
    python scripts/browser/screenshot.py out/curves/report.html docs/img/report-asha.png \\
        --sections history,parcoords,slices,importance
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from browser import load_report, open_browser, screenshot  # noqa: E402

#: hides every section of the page but the ones named (their ids, the page's nav links)
KEEP_SECTIONS_JS = """
const keep = arguments[0];
document.querySelectorAll('main > section').forEach(s => {
  if (!keep.includes(s.id)) { s.hidden = true; }
});
return Array.from(document.querySelectorAll('main > section')).map(s => s.id);
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=None, help="default: the whole page")
    parser.add_argument("--sections", default=None,
                        help="comma-separated section ids to show (e.g. history,slices); "
                             "default: all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as profile:
        driver = open_browser(Path(profile), width=args.width)
        try:
            state = load_report(driver, args.report)
            if args.sections:
                keep = args.sections.split(",")
                ids = driver.execute_script(KEEP_SECTIONS_JS, keep)
                unknown = [k for k in keep if k not in ids]
                if unknown:
                    sys.exit(f"screenshot.py: error: no section {', '.join(unknown)}; the "
                             f"page has {', '.join(ids)}")
            screenshot(driver, args.png, args.height)
        finally:
            driver.quit()
    print(f"{args.png}: {state}, {args.png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
