import sys

from telegraf_bridge.plugins.common._host import main

sys.exit(main())
