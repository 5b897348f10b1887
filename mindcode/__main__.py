import sys

from mindcode.cli import main

sys.exit(main())
