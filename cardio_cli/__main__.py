import sys

from cardio_cli.main import main

sys.exit(main())
