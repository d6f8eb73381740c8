import sys
from pathlib import Path

# The builders module sits beside the test folders; make it importable from both.
sys.path.insert(0, str(Path(__file__).parent))
