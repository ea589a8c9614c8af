"""Print the compare step's outputs (verdict, headline) for $GITHUB_OUTPUT from compare.json."""

import json
import sys
from pathlib import Path

path = Path(sys.argv[1])
if path.is_file():
    result = json.loads(path.read_text(encoding="utf-8"))
    print(f"verdict={result['verdict']}")
    print("headline=" + " ".join(result["headline"].split()))
else:  # compare stopped before writing a report (bad config, no model): that is a failure
    print("verdict=fail")
    print(f"headline=no comparison report at {path}; see the step's log")
