import sys

from telegraf_bridge.plugins.taptap.plugin import main

sys.exit(main())
