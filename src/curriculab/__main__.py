"""`python -m curriculab plan`: the same as the `curriculab` command."""

import sys

from curriculab.cost import main

sys.exit(main())
