import sys

from bench.inbound.run import main

sys.exit(main())
