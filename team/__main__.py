import sys

from team.cluster import main

sys.exit(main())
